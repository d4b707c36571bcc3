// The app's access to the target managed instance, in the instance's resource group: a custom role limited to the
// instance's databases (start = create a database with createMode RestoreExternalBackup, restoreDetails,
// completeRestore, status, the database list) and reading the instance itself (its region, tier, update policy,
// storage) and its metrics (Azure Monitor's storage_space_used_mb, for the preflight's free-storage check: only
// Microsoft.Insights/metrics/read, less than the built-in Monitoring Reader), rather than Contributor or SQL Managed
// Instance Contributor. Deleting a database is excluded: the pipeline never deletes one, so its identity cannot.

@description('Managed instance name (in this module\'s resource group).')
param managedInstanceName string

@description('Principal id of the app\'s identity.')
param appPrincipalId string

@description('Team name (makes the role name unique per pipeline).')
param teamName string

@description('Resource id of the pipeline\'s resource group (makes the role id unique per pipeline).')
param deploymentResourceGroupId string

resource managedInstance 'Microsoft.Sql/managedInstances@2025-01-01' existing = {
  name: managedInstanceName
}

resource operatorRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(resourceGroup().id, deploymentResourceGroupId, 'lrs-autopilot-operator')
  properties: {
    roleName: 'LRS autopilot operator (${teamName}, ${uniqueString(deploymentResourceGroupId)})'
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

resource operatorAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(managedInstance.id, appPrincipalId, operatorRole.id)
  scope: managedInstance
  properties: {
    roleDefinitionId: operatorRole.id
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

@description('Resource id of the custom role.')
output roleDefinitionId string = operatorRole.id
