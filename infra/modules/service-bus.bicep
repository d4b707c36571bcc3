// Service Bus namespace and the queue Event Grid delivers BlobCreated events to. Standard tier: duplicate detection
// needs it. Local (SAS key) authentication is off: Event Grid sends and the Functions host receives with identities.

@description('Region.')
param location string

@description('Tags.')
param tags object

@description('Namespace name (globally unique).')
param namespaceName string

@description('Queue name (LRS_EVENTS_QUEUE).')
param queueName string

@description('Principal id that receives (the app): Azure Service Bus Data Receiver on the queue.')
param receiverPrincipalId string

@description('Principal id that sends (the Event Grid topic): Azure Service Bus Data Sender on the queue.')
param senderPrincipalId string

var serviceBusDataReceiver = '4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0'
var serviceBusDataSender = '69a216fc-b8fb-44d8-bc22-1f3c2cd27a39'

resource namespace 'Microsoft.ServiceBus/namespaces@2024-01-01' = {
  name: namespaceName
  location: location
  tags: tags
  sku: {
    name: 'Standard'
    tier: 'Standard'
  }
  properties: {
    disableLocalAuth: true
    minimumTlsVersion: '1.2'
    publicNetworkAccess: 'Enabled'
  }
}

resource queue 'Microsoft.ServiceBus/namespaces/queues@2024-01-01' = {
  parent: namespace
  name: queueName
  properties: {
    // Longer than a handler's worst case (ranged reads + one ARM call); the host renews the lock up to 5 min.
    lockDuration: 'PT5M'
    maxDeliveryCount: 10
    // Event Grid keeps one MessageId across its redeliveries, which it retries for up to a day (eventTimeToLive
    // 1440 min): detect duplicates over that whole day.
    requiresDuplicateDetection: true
    duplicateDetectionHistoryTimeWindow: 'P1D'
    // Event Grid cannot deliver to session-enabled queues.
    requiresSession: false
    deadLetteringOnMessageExpiration: true
    defaultMessageTimeToLive: 'P14D'
  }
}

resource receiver 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(queue.id, receiverPrincipalId, serviceBusDataReceiver)
  scope: queue
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', serviceBusDataReceiver)
    principalId: receiverPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource sender 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(queue.id, senderPrincipalId, serviceBusDataSender)
  scope: queue
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', serviceBusDataSender)
    principalId: senderPrincipalId
    principalType: 'ServicePrincipal'
  }
}

@description('Namespace resource id (its DeadletteredMessages metric is alerted on).')
output namespaceId string = namespace.id

@description('Fully qualified namespace host (ServiceBusConnection__fullyQualifiedNamespace).')
output namespaceHost string = split(replace(namespace.properties.serviceBusEndpoint, 'https://', ''), ':')[0]

@description('Queue resource id (the Event Grid destination).')
output queueId string = queue.id
