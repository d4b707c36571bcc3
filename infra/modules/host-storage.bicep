// The Functions host's own storage account (AzureWebJobsStorage: keys, timer locks) and the deployment package.
// Kept apart from the backup account so host blobs never reach the BlobCreated subscription and the backup account
// can belong to someone else. No shared key: the host connects with the app's identity, and the app gets its code
// from the `app-package` container with that identity: on Flex Consumption as the deployment container named in
// functionAppConfig (one deploy writes the package there), on Elastic Premium and Dedicated as the package blob
// (WEBSITE_RUN_FROM_PACKAGE + WEBSITE_RUN_FROM_PACKAGE_BLOB_MI_RESOURCE_ID), which is how those plans run without an
// Azure Files content share (Azure Files needs a key).

@description('Region.')
param location string

@description('Tags.')
param tags object

@description('Storage account name (3-24 lowercase letters and digits).')
param accountName string

@description('Principal id of the app\'s identity.')
param appPrincipalId string

@description('Object id of whoever uploads the package; empty for none.')
param deployerPrincipalId string

var packageContainer = 'app-package'
var packageBlob = 'lrs-autopilot.zip'
// The host needs Blob Data Owner on its storage (the documented minimum for AzureWebJobsStorage) and Table Data
// Contributor for its diagnostic events; this account holds nothing else.
var storageBlobDataOwner = 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
var storageTableDataContributor = '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
var storageBlobDataContributor = 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'

resource account 'Microsoft.Storage/storageAccounts@2025-01-01' = {
  // checkov:skip=CKV_AZURE_35: the Functions host reaches this account over the public endpoint (the app is not VNet-integrated); shared keys are off, so only Entra ID callers with a role get in
  // checkov:skip=CKV_AZURE_59: same reason as CKV_AZURE_35: public network access stays on, access is by Entra ID role only
  // checkov:skip=CKV_AZURE_206: host data (locks, keys) and a package that is re-uploaded on each deploy: locally redundant storage is enough
  // checkov:skip=CKV_AZURE_43: the name is computed in main.bicep ('lrsh' + team name + uniqueString, lower-cased, cut to 24 characters); checkov only checks literal names
  name: accountName
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2025-01-01' = {
  parent: account
  name: 'default'
}

resource package 'Microsoft.Storage/storageAccounts/blobServices/containers@2025-01-01' = {
  parent: blobService
  name: packageContainer
  properties: {
    publicAccess: 'None'
  }
}

resource blobOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(account.id, appPrincipalId, storageBlobDataOwner)
  scope: account
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataOwner)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource tableContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(account.id, appPrincipalId, storageTableDataContributor)
  scope: account
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageTableDataContributor)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Elastic Premium and Dedicated: the zip deploy is an upload with Entra ID (shared keys are off), so the deployer needs
// write access to this container. (On Flex the platform writes the package with the app's identity.)
resource deployerUploads 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(deployerPrincipalId)) {
  name: guid(package.id, deployerPrincipalId, storageBlobDataContributor)
  scope: package
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataContributor)
    principalId: deployerPrincipalId
  }
}

@description('Account name (AzureWebJobsStorage__accountName).')
output accountName string = account.name

@description('Container of the deployment package.')
output packageContainer string = packageContainer

@description('Blob name of the deployment package.')
output packageBlob string = packageBlob

@description('Flex Consumption: the deployment container (functionAppConfig.deployment.storage.value).')
output packageContainerUrl string = '${account.properties.primaryEndpoints.blob}${packageContainer}'

@description('Elastic Premium and Dedicated: URL the app runs its code from (WEBSITE_RUN_FROM_PACKAGE).')
output packageUrl string = '${account.properties.primaryEndpoints.blob}${packageContainer}/${packageBlob}'
