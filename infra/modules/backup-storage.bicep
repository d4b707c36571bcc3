// The backup storage account's containers (the account is new, from backup-account.bicep, or an existing one in
// this module's resource group) and the data-plane roles on them:
//   - the app: Storage Blob Data Reader on each backup container, Storage Blob Data Contributor on the state container;
//   - each target managed instance's identity (managed-identity mode): Storage Blob Data Reader on the backup
//     containers whose folders may migrate to it, and no other.
// Deployed into the account's own resource group, which may differ from the pipeline's.

@description('Storage account name.')
param accountName string

@description('Backup containers.')
param backupContainers array

@description('State container.')
param stateContainerName string

@description('Event Grid dead-letter container.')
param deadLetterContainerName string

@description('Principal id of the app\'s identity.')
param appPrincipalId string

@description('Principal id of the default managed instance\'s identity; empty when LRS reads with a SAS or there is no default instance.')
param managedInstancePrincipalId string

@description('Backup containers the default instance reads: those no container-wide target sends elsewhere.')
param managedInstanceContainers array = backupContainers

@description('Other target instances\' readers: [{ container, principalId, covered }]; covered (or an empty principal) assigns nothing, for an entry the default instance\'s assignment already covers.')
param targetReaders array = []

var storageBlobDataReader = '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1'
var storageBlobDataContributor = 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'

resource account 'Microsoft.Storage/storageAccounts@2025-01-01' existing = {
  name: accountName
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2025-01-01' existing = {
  parent: account
  name: 'default'
}

resource backup 'Microsoft.Storage/storageAccounts/blobServices/containers@2025-01-01' = [
  for name in backupContainers: {
    parent: blobService
    name: name
    properties: {
      publicAccess: 'None'
    }
  }
]

resource state 'Microsoft.Storage/storageAccounts/blobServices/containers@2025-01-01' = {
  parent: blobService
  name: stateContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource deadLetter 'Microsoft.Storage/storageAccounts/blobServices/containers@2025-01-01' = {
  parent: blobService
  name: deadLetterContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource appReadsBackups 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for (name, i) in backupContainers: {
    name: guid(backup[i].id, appPrincipalId, storageBlobDataReader)
    scope: backup[i]
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataReader)
      principalId: appPrincipalId
      principalType: 'ServicePrincipal'
    }
  }
]

resource appWritesState 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(state.id, appPrincipalId, storageBlobDataContributor)
  scope: state
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataContributor)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource instanceReadsBackups 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for (name, i) in backupContainers: if (!empty(managedInstancePrincipalId) && contains(managedInstanceContainers, name)) {
    name: guid(backup[i].id, managedInstancePrincipalId, storageBlobDataReader)
    scope: backup[i]
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataReader)
      principalId: managedInstancePrincipalId
      principalType: 'ServicePrincipal'
    }
  }
]

resource readerContainers 'Microsoft.Storage/storageAccounts/blobServices/containers@2025-01-01' existing = [
  for r in targetReaders: {
    parent: blobService
    name: r.container
  }
]

resource targetInstancesReadBackups 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for (r, i) in targetReaders: if (!r.covered && !empty(r.principalId)) {
    name: r.covered ? guid(readerContainers[i].id, 'covered', string(i)) : guid(readerContainers[i].id, r.principalId, storageBlobDataReader)
    scope: readerContainers[i]
    properties: {
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataReader)
      principalId: r.principalId
      principalType: 'ServicePrincipal'
    }
    dependsOn: [
      backup
    ]
  }
]

@description('Account resource id (the Event Grid topic\'s source).')
output accountId string = account.id

@description('Account region (the Event Grid system topic must use it).')
output location string = account.location

@description('Blob endpoint without a trailing slash (LRS_STORAGE_ACCOUNT_URL).')
output blobEndpoint string = 'https://${accountName}.blob.${environment().suffixes.storage}'
