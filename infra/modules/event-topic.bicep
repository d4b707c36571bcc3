// The Event Grid system topic on the backup storage account. Its system-assigned identity delivers to the Service
// Bus queue and dead-letters to blob storage, so neither needs a key or a SAS.

@description('Region: the storage account\'s.')
param location string

@description('Tags.')
param tags object

@description('System topic name.')
param topicName string

@description('Resource id of the backup storage account.')
param storageAccountId string

resource topic 'Microsoft.EventGrid/systemTopics@2025-02-15' = {
  name: topicName
  location: location
  tags: tags
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    source: storageAccountId
    topicType: 'Microsoft.Storage.StorageAccounts'
  }
}

@description('System topic name.')
output name string = topic.name

@description('System topic resource id (its DeadLetteredCount metric is alerted on).')
output id string = topic.id

@description('Principal id of the topic\'s identity.')
output principalId string = topic.identity.principalId
