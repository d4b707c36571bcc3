// The app's access to the target managed instances of one resource group (this module's; main.bicep deploys one
// module per resource group holding a target instance): one custom role per resource group, assigned on each of its
// instances. The role is limited to the instances' databases (start = create a database with createMode RestoreExternalBackup, restoreDetails,
// completeRestore, status, the database list) and reading the instance itself (its region, tier, update policy,
// storage) and its metrics (Azure Monitor's storage_space_used_mb, for the preflight's free-storage check: only
// Microsoft.Insights/metrics/read, less than the built-in Monitoring Reader), rather than Contributor or SQL Managed
// Instance Contributor. Deleting a database is excluded: the pipeline never deletes one, so its identity cannot.

@description('Resource ids of every target managed instance; those in this module\'s resource group get the role.')
param managedInstanceIds array

@description('Principal id of the app\'s identity.')
param appPrincipalId string

@description('Team name (makes the role name unique per pipeline).')
param teamName string

@description('Resource id of the pipeline\'s resource group (makes the role id unique per pipeline).')
param deploymentResourceGroupId string

// Ids compared lowercased (ARM ids are case-insensitive); names kept as given, so the assignment names of an existing
// deployment (a guid of the instance id) do not change.
var groupPrefix = toLower('${resourceGroup().id}/providers/Microsoft.Sql/managedInstances/')

resource managedInstances 'Microsoft.Sql/managedInstances@2025-01-01' existing = [for id in managedInstanceIds: {
  name: last(split(id, '/'))
}]

resource operatorRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(resourceGroup().id, deploymentResourceGroupId, 'lrs-autopilot-operator')
  properties: {
    // Role names are unique in a tenant: one per pipeline and instance resource group.
    roleName: 'LRS autopilot operator (${teamName}, ${uniqueString(deploymentResourceGroupId, resourceGroup().id)})'
    description: 'Runs Log Replay Service migrations on managed instances: manage their databases (no delete) and read the instance.'
    type: 'CustomRole'
    permissions: [
      {
        actions: [
          'Microsoft.Sql/managedInstances/read'
          'Microsoft.Sql/managedInstances/databases/*'
          'Microsoft.Insights/metrics/read'
        ]
        notActions: [
          'Microsoft.Sql/managedInstances/databases/delete'
        ]
      }
    ]
    assignableScopes: [
      resourceGroup().id
    ]
  }
}

resource operatorAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for (id, i) in managedInstanceIds: if (startsWith(toLower(id), groupPrefix)) {
  name: guid(managedInstances[i].id, appPrincipalId, operatorRole.id)
  scope: managedInstances[i]
  properties: {
    roleDefinitionId: operatorRole.id
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}]

@description('Resource id of the custom role.')
output roleDefinitionId string = operatorRole.id
