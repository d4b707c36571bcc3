// A new backup storage account (main.bicep deploys this module only when no existing account is given). TLS 1.2,
// HTTPS only, no anonymous blob access, and no shared key unless LRS must read with a SAS (a service SAS is signed
// with an account key). Soft delete keeps a deleted backup recoverable: a missing file breaks the chain LRS restores.

@description('Region.')
param location string

@description('Tags.')
param tags object

@description('Storage account name (3-24 lowercase letters and digits).')
param accountName string

@description('Replication: main.bicep allows only zone- or geo-redundant SKUs.')
param skuName string

@description('Allow shared-key requests: only in SAS mode.')
param allowSharedKey bool

resource account 'Microsoft.Storage/storageAccounts@2025-01-01' = {
  // checkov:skip=CKV_AZURE_35: SQL Server (on premises or in a VM) writes backups with BACKUP TO URL or AzCopy, and the Function App (not VNet-integrated) and the managed instance read them, over the public endpoint; infra/README.md says how to close it with a firewall or private endpoint once those paths exist
  // checkov:skip=CKV_AZURE_59: same reason as CKV_AZURE_35: the public endpoint stays on, and every caller needs an Entra ID role (or, in SAS mode, the Read+List SAS)
  // checkov:skip=CKV_AZURE_206: replication is the backupStorageSku parameter, whose allowed values are all zone- or geo-redundant (ZRS, GRS, RA-GRS, GZRS, RA-GZRS); checkov cannot resolve a module parameter and does not count ZRS
  // checkov:skip=CKV_AZURE_43: the name is computed in main.bicep ('lrs' + team name + uniqueString, lower-cased, cut to 24 characters); checkov only checks literal names
  name: accountName
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: skuName
  }
  properties: {
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    allowBlobPublicAccess: false
    allowSharedKeyAccess: allowSharedKey
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
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: 7
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: 7
    }
  }
}

@description('Account resource id.')
output id string = account.id
