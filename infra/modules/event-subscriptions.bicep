// One BlobCreated subscription per backup container, delivered with the topic's identity to the Service Bus queue
// (one event per message, Event Grid schema), retried for a day and dead-lettered to a blob container.
// Filters: only committed, non-empty blobs (PutBlob / PutBlockList, FlushWithClose on hierarchical-namespace
// accounts); CreateFile and the zero-length first event of an async copy are dropped here.

@description('System topic name.')
param topicName string

@description('Principal id of the topic\'s identity (gets Blob Data Contributor on the dead-letter container).')
param topicPrincipalId string

@description('Backup storage account name (in this module\'s resource group).')
param storageAccountName string

@description('Backup containers; one subscription each.')
param backupContainers array

@description('Dead-letter container.')
param deadLetterContainerName string

@description('Service Bus queue resource id.')
param queueId string

var storageBlobDataContributor = 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'

resource topic 'Microsoft.EventGrid/systemTopics@2025-02-15' existing = {
  name: topicName
}

resource account 'Microsoft.Storage/storageAccounts@2025-01-01' existing = {
  name: storageAccountName
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2025-01-01' existing = {
  parent: account
  name: 'default'
}

resource deadLetter 'Microsoft.Storage/storageAccounts/blobServices/containers@2025-01-01' existing = {
  parent: blobService
  name: deadLetterContainerName
}

resource topicWritesDeadLetters 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(deadLetter.id, topicPrincipalId, storageBlobDataContributor)
  scope: deadLetter
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataContributor)
    principalId: topicPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource subscriptions 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2025-02-15' = [
  for container in backupContainers: {
    parent: topic
    name: 'blob-created-${container}'
    properties: {
      eventDeliverySchema: 'EventGridSchema'
      deliveryWithResourceIdentity: {
        identity: {
          type: 'SystemAssigned'
        }
        destination: {
          endpointType: 'ServiceBusQueue'
          properties: {
            resourceId: queueId
          }
        }
      }
      filter: {
        includedEventTypes: [
          'Microsoft.Storage.BlobCreated'
        ]
        // The trailing "/blobs/" keeps container "sales" from matching "sales2".
        subjectBeginsWith: '/blobServices/default/containers/${container}/blobs/'
        advancedFilters: [
          {
            operatorType: 'StringIn'
            key: 'data.api'
            values: [
              'PutBlockList'
              'PutBlob'
              'FlushWithClose'
            ]
          }
          {
            operatorType: 'NumberGreaterThan'
            key: 'data.contentLength'
            value: 0
          }
        ]
      }
      retryPolicy: {
        maxDeliveryAttempts: 30
        eventTimeToLiveInMinutes: 1440
      }
      deadLetterWithResourceIdentity: {
        identity: {
          type: 'SystemAssigned'
        }
        deadLetterDestination: {
          endpointType: 'StorageBlob'
          properties: {
            resourceId: account.id
            blobContainerName: deadLetterContainerName
          }
        }
      }
    }
    dependsOn: [
      topicWritesDeadLetters
    ]
  }
]

@description('Names of the event subscriptions.')
output subscriptionNames array = [for (container, i) in backupContainers: subscriptions[i].name]
