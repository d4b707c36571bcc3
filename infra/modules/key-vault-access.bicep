// SAS mode only: the app reads the LRS SAS token through a Key Vault reference (LRS_STORAGE_SAS_TOKEN), with its
// own identity, so it needs Key Vault Secrets User on that one secret. The vault must use Azure RBAC authorization.

@description('Key Vault name (in this module\'s resource group).')
param vaultName string

@description('Secret holding the SAS token.')
param secretName string

@description('Principal id of the app\'s identity.')
param appPrincipalId string

var keyVaultSecretsUser = '4633458b-17de-408a-b874-0445c86b69e6'

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: vaultName
}

resource secret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' existing = {
  parent: vault
  name: secretName
}

resource secretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(secret.id, appPrincipalId, keyVaultSecretsUser)
  scope: secret
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUser)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

@description('Unversioned secret URI.')
output secretUri string = secret.properties.secretUri
