// lrs-autopilot: one per-team pipeline (storage, Event Grid, Service Bus, Function App, identities, least-privilege
// roles, monitoring and alerts) in one resource-group deployment. The target managed instance, an existing backup
// storage account and the Key Vault holding a SAS may live in other resource groups: modules scoped to those groups
// create what must sit beside them (role assignments, containers, the Event Grid system topic).
//
//   az deployment group create -g <rg> -f infra/main.bicep -p @infra/main.parameters.json
//
// See infra/README.md for the whole procedure.
targetScope = 'resourceGroup'

// ---------------------------------------------------------------------------------------------------------------
// Parameters
// ---------------------------------------------------------------------------------------------------------------

@description('Short team name (lowercase letters and digits, 2-10 characters); it prefixes every resource name.')
@minLength(2)
@maxLength(10)
param teamName string

@description('Region of the pipeline resources. Defaults to the resource group\'s region.')
param location string = resourceGroup().location

@description('Resource id of the default target Azure SQL Managed Instance (/subscriptions/../resourceGroups/../providers/Microsoft.Sql/managedInstances/<name>): every container no targets entry covers migrates to it. It may be in another resource group or subscription. Leave empty only when targets has an entry for every backup container.')
param managedInstanceId string = ''

@description('Object (principal) id of the managed instance\'s identity that LRS uses to read backups. Leave empty to use its system-assigned identity; set it when the instance\'s primary identity is user-assigned.')
param managedInstancePrincipalId string = ''

@description('Several target instances (LRS_TARGETS): each entry sends a backup container, or one folder of it, to a managed instance: { container: string, folder: string (optional), managedInstanceId: string, managedInstancePrincipalId: string (optional, as managedInstancePrincipalId) }. The most specific entry wins, then managedInstanceId. Each container must be in backupContainers; spell each instance id the same way in every entry.')
param targets array = []

@description('Blob containers that receive backups (one flat folder per database inside each). No name may contain the word "backup" in any case: LRS refuses such paths, and the handler does not start with one.')
@minLength(1)
param backupContainers array = [
  'lrs-source'
]

@description('Container holding one state document per database (LRS_STATE_CONTAINER).')
param stateContainerName string = 'lrs-autopilot-state'

@description('Container where Event Grid dead-letters events it could not deliver to the queue.')
param deadLetterContainerName string = 'eventgrid-deadletter'

@description('Resource id of an existing storage account for backups, state and dead letters. Leave empty to create one.')
param existingStorageAccountId string = ''

@description('Let a new backup storage account accept shared-key requests even in ManagedIdentity mode, e.g. for SQL Server BACKUP TO URL with a service SAS. SAS mode always allows them.')
param backupStorageAllowSharedKey bool = false

@description('Replication of a new backup storage account.')
@allowed([
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_RAGRS'
  'Standard_GZRS'
  'Standard_RAGZRS'
])
param backupStorageSku string = 'Standard_ZRS'

@description('File-name pattern of the tail-log backup that triggers the cutover (LRS_TAIL_PATTERN).')
param tailPattern string = '*_tail.*'

@description('NCRONTAB schedule (six fields, with seconds) of the CutoverTimer function (LRS_TIMER_SCHEDULE).')
param timerSchedule string = '*/5 * * * * *'

@description('How LRS reads the backups: the managed instance\'s managed identity, or a SAS (Read + List) kept in Key Vault.')
@allowed([
  'ManagedIdentity'
  'SharedAccessSignature'
])
param lrsStorageAuth string = 'ManagedIdentity'

@description('SharedAccessSignature only: resource id of the Key Vault (RBAC authorization) holding the SAS token.')
param sasKeyVaultId string = ''

@description('SharedAccessSignature only: name of the Key Vault secret holding the SAS token (no leading "?").')
param sasSecretName string = ''

@description('Resource id of the action group that alerts notify. Leave empty to create the alert rules without notifications.')
param actionGroupId string = ''

@description('Hosting plan: FlexConsumption (default: billed per execution, scales to zero), ElasticPremium (at least one instance always billed) or Dedicated (App Service plan).')
@allowed([
  'FlexConsumption'
  'ElasticPremium'
  'Dedicated'
])
param hostingPlan string = 'FlexConsumption'

@description('FlexConsumption only: memory of each instance in MB. The binary needs about 15 MiB resident; 512 is the smallest size Flex offers.')
@allowed([
  512
  2048
  4096
])
param flexInstanceMemoryMB int = 512

@description('FlexConsumption only: most instances the app may scale out to (Flex accepts 40 to 1000).')
@minValue(40)
@maxValue(1000)
param flexMaximumInstanceCount int = 40

@description('Elastic Premium size.')
@allowed([
  'EP1'
  'EP2'
  'EP3'
])
param premiumSku string = 'EP1'

@description('Dedicated (App Service plan) size.')
param dedicatedSku string = 'P0v3'

@description('ElasticPremium only: most instances the plan may scale out to.')
@minValue(1)
@maxValue(100)
param maximumElasticWorkerCount int = 3

@description('Collation of restored databases when LRS needs one (LRS_DEFAULT_COLLATION).')
param defaultCollation string = 'SQL_Latin1_General_CP1_CI_AS'

@description('Most LRS restores the pipeline runs at once on the instance (LRS_MAX_CONCURRENT_RESTORES; LRS allows 100).')
@minValue(1)
@maxValue(100)
param maxConcurrentRestores int = 100

@description('Folder name to target database name, e.g. {"sales_2019": "Sales"} (LRS_DATABASE_NAME_MAP).')
param databaseNameMap object = {}

@description('Service Bus queue that Event Grid delivers BlobCreated events to (LRS_EVENTS_QUEUE).')
param queueName string = 'lrs-backup-events'

@description('Days Log Analytics keeps logs.')
@minValue(30)
@maxValue(730)
param logRetentionDays int = 30

@description('Object id of the user or service principal that uploads the deployment package (gets Storage Blob Data Contributor on the package container). Leave empty to grant it yourself.')
param deployerPrincipalId string = ''

@description('Tags added to every resource.')
param tags object = {}

// ---------------------------------------------------------------------------------------------------------------
// Names and derived values
// ---------------------------------------------------------------------------------------------------------------

var allTags = union(tags, { 'lrs-autopilot-team': teamName })
var suffix = uniqueString(resourceGroup().id, teamName)
var compactTeam = toLower(replace(teamName, '-', ''))
var prefix = 'lrs-${toLower(teamName)}'

var hasDefaultInstance = !empty(managedInstanceId)
// A placeholder keeps the expressions below valid without a default instance; nothing reads it then.
var defaultInstanceId = hasDefaultInstance ? managedInstanceId : '/subscriptions/${subscription().subscriptionId}/resourceGroups/${resourceGroup().name}/providers/Microsoft.Sql/managedInstances/none'
var miParts = split(defaultInstanceId, '/')
var miSubscriptionId = miParts[2]
var miResourceGroup = miParts[4]
var miName = last(miParts)

var createStorage = empty(existingStorageAccountId)
var storageParts = split(existingStorageAccountId, '/')
var storageSubscriptionId = createStorage ? subscription().subscriptionId : storageParts[2]
var storageResourceGroup = createStorage ? resourceGroup().name : storageParts[4]
var storageAccountName = createStorage ? take('lrs${compactTeam}${suffix}', 24) : last(storageParts)

var useSas = lrsStorageAuth == 'SharedAccessSignature'
var vaultParts = split(sasKeyVaultId, '/')
// Unversioned secret URI: App Service picks up a rotated SAS on its own (within a day, or at restart).
var sasSecretUri = useSas ? 'https://${last(vaultParts)}${environment().suffixes.keyvaultDns}/secrets/${sasSecretName}' : ''

// The identity LRS reads backups with: the instance's system-assigned one unless another is named.
var instancePrincipalId = !hasDefaultInstance ? '' : (empty(managedInstancePrincipalId) ? managedInstance.identity.principalId : managedInstancePrincipalId)

// Targets. Every instance once (union keeps one of equal values), and every resource group holding one: the app's
// role is defined once per resource group and assigned on each instance.
var targetInstanceIds = [for t in targets: t.managedInstanceId]
var instanceIds = union(hasDefaultInstance ? [managedInstanceId] : [], targetInstanceIds)
var instanceGroupIds = [for id in instanceIds: join(take(split(id, '/'), 5), '/')]
var instanceGroups = union(instanceGroupIds, [])
// LRS_TARGETS, built as text (container names and resource ids hold no quote; the binary checks the result).
var targetPairs = [for t in targets: '"${empty(t.?folder ?? '') ? t.container : '${t.container}/${t.folder}'}":"${t.managedInstanceId}"']
var lrsTargets = empty(targets) ? '' : '{${join(targetPairs, ',')}}'
// Containers a container-wide entry sends elsewhere are not read by the default instance.
var wholeContainerKeys = [for t in targets: empty(t.?folder ?? '') ? t.container : '']
var defaultInstanceContainers = [for c in backupContainers: contains(wholeContainerKeys, c) ? '' : c]
// Each target instance reads its entry's container; an entry the default instance's assignment already covers (same
// instance and identity, a container the default reads) is skipped, so no assignment is declared twice.
var readerEntries = [for t in targets: {
  container: t.container
  instanceId: t.managedInstanceId
  principalId: t.?managedInstancePrincipalId ?? ''
  covered: hasDefaultInstance && toLower(t.managedInstanceId) == toLower(managedInstanceId) && empty(t.?managedInstancePrincipalId ?? '') && empty(managedInstancePrincipalId) && contains(defaultInstanceContainers, t.container)
}]
var readers = union(readerEntries, [])

// ARM endpoint without the trailing slash the binary's default also lacks (sovereign clouds differ).
var resourceManager = environment().resourceManager
var armEndpoint = endsWith(resourceManager, '/') ? substring(resourceManager, 0, length(resourceManager) - 1) : resourceManager

// ---------------------------------------------------------------------------------------------------------------
// Resources
// ---------------------------------------------------------------------------------------------------------------

// The app's one identity: storage, Service Bus, ARM (LRS), Key Vault and App Insights all accept it.
resource appIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: '${prefix}-app-id'
  location: location
  tags: allTags
}

resource managedInstance 'Microsoft.Sql/managedInstances@2025-01-01' existing = {
  name: miName
  scope: resourceGroup(miSubscriptionId, miResourceGroup)
}

// The target instances whose identity reads backups, for their principal ids.
resource readerInstances 'Microsoft.Sql/managedInstances@2025-01-01' existing = [for r in readers: {
  name: last(split(r.instanceId, '/'))
  scope: resourceGroup(split(r.instanceId, '/')[2], split(r.instanceId, '/')[4])
}]

module monitoring 'modules/monitoring.bicep' = {
  name: 'lrs-monitoring'
  params: {
    location: location
    tags: allTags
    namePrefix: prefix
    retentionDays: logRetentionDays
    publisherPrincipalId: appIdentity.properties.principalId
  }
}

module hostStorage 'modules/host-storage.bicep' = {
  name: 'lrs-host-storage'
  params: {
    location: location
    tags: allTags
    accountName: take('lrsh${compactTeam}${suffix}', 24)
    appPrincipalId: appIdentity.properties.principalId
    deployerPrincipalId: deployerPrincipalId
  }
}

module backupAccount 'modules/backup-account.bicep' = if (createStorage) {
  name: 'lrs-backup-account'
  params: {
    location: location
    tags: allTags
    accountName: storageAccountName
    skuName: backupStorageSku
    // A service SAS is signed with an account key: allow keys only when something must sign one.
    allowSharedKey: useSas || backupStorageAllowSharedKey
  }
}

module backupStorage 'modules/backup-storage.bicep' = {
  name: 'lrs-backup-storage'
  scope: resourceGroup(storageSubscriptionId, storageResourceGroup)
  params: {
    accountName: storageAccountName
    backupContainers: backupContainers
    stateContainerName: stateContainerName
    deadLetterContainerName: deadLetterContainerName
    appPrincipalId: appIdentity.properties.principalId
    // LRS reads with the instance's identity only in ManagedIdentity mode; with a SAS it needs no role.
    managedInstancePrincipalId: useSas ? '' : instancePrincipalId
    managedInstanceContainers: defaultInstanceContainers
    targetReaders: [for (r, i) in readers: {
      container: r.container
      principalId: useSas ? '' : (empty(r.principalId) ? readerInstances[i].identity.principalId : r.principalId)
      covered: r.covered
    }]
  }
  dependsOn: [
    backupAccount
  ]
}

module eventTopic 'modules/event-topic.bicep' = {
  name: 'lrs-event-topic'
  scope: resourceGroup(storageSubscriptionId, storageResourceGroup)
  params: {
    // A system topic must sit in its source's region.
    location: backupStorage.outputs.location
    tags: allTags
    topicName: '${prefix}-blob-events'
    storageAccountId: backupStorage.outputs.accountId
  }
}

module serviceBus 'modules/service-bus.bicep' = {
  name: 'lrs-service-bus'
  params: {
    location: location
    tags: allTags
    namespaceName: '${prefix}-${suffix}'
    queueName: queueName
    receiverPrincipalId: appIdentity.properties.principalId
    senderPrincipalId: eventTopic.outputs.principalId
  }
}

module eventSubscriptions 'modules/event-subscriptions.bicep' = {
  name: 'lrs-event-subscriptions'
  scope: resourceGroup(storageSubscriptionId, storageResourceGroup)
  params: {
    topicName: eventTopic.outputs.name
    topicPrincipalId: eventTopic.outputs.principalId
    storageAccountName: storageAccountName
    backupContainers: backupContainers
    deadLetterContainerName: deadLetterContainerName
    queueId: serviceBus.outputs.queueId
  }
  dependsOn: [
    backupStorage
  ]
}

// One per resource group holding a target instance (the default one and every targets entry's).
module managedInstanceAccess 'modules/managed-instance-access.bicep' = [for group in instanceGroups: {
  name: 'lrs-mi-access-${uniqueString(group)}'
  scope: resourceGroup(split(group, '/')[2], split(group, '/')[4])
  params: {
    managedInstanceIds: instanceIds
    appPrincipalId: appIdentity.properties.principalId
    teamName: teamName
    deploymentResourceGroupId: resourceGroup().id
  }
}]

module sasAccess 'modules/key-vault-access.bicep' = if (useSas) {
  name: 'lrs-sas-access'
  scope: resourceGroup(useSas ? vaultParts[2] : subscription().subscriptionId, useSas ? vaultParts[4] : resourceGroup().name)
  params: {
    vaultName: useSas ? last(vaultParts) : ''
    secretName: sasSecretName
    appPrincipalId: appIdentity.properties.principalId
  }
}

module functionApp 'modules/function-app.bicep' = {
  name: 'lrs-function-app'
  params: {
    location: location
    tags: allTags
    appName: '${prefix}-${suffix}'
    hostingPlan: hostingPlan
    premiumSku: premiumSku
    dedicatedSku: dedicatedSku
    maximumElasticWorkerCount: maximumElasticWorkerCount
    instanceMemoryMB: flexInstanceMemoryMB
    maximumInstanceCount: flexMaximumInstanceCount
    deploymentContainerUrl: hostStorage.outputs.packageContainerUrl
    identityId: appIdentity.id
    identityClientId: appIdentity.properties.clientId
    hostStorageAccountName: hostStorage.outputs.accountName
    packageUrl: hostStorage.outputs.packageUrl
    appInsightsConnectionString: monitoring.outputs.appInsightsConnectionString
    serviceBusNamespaceHost: serviceBus.outputs.namespaceHost
    armEndpoint: armEndpoint
    // Empty without a default instance: the binary reads an empty setting as unset.
    subscriptionId: hasDefaultInstance ? miSubscriptionId : ''
    managedInstanceResourceGroup: hasDefaultInstance ? miResourceGroup : ''
    managedInstanceName: hasDefaultInstance ? miName : ''
    lrsTargets: lrsTargets
    storageAccountUrl: backupStorage.outputs.blobEndpoint
    backupContainers: backupContainers
    stateContainerName: stateContainerName
    lrsStorageAuth: lrsStorageAuth
    sasSecretUri: sasSecretUri
    defaultCollation: defaultCollation
    tailPattern: tailPattern
    maxConcurrentRestores: maxConcurrentRestores
    databaseNameMap: databaseNameMap
    queueName: queueName
    timerSchedule: timerSchedule
  }
  dependsOn: [
    // The host starts reading the queue and blobs as soon as it runs: grant first.
    managedInstanceAccess
    backupStorage
    sasAccess
  ]
}

module alerts 'modules/alerts.bicep' = {
  name: 'lrs-alerts'
  params: {
    location: location
    tags: allTags
    namePrefix: prefix
    actionGroupId: actionGroupId
    serviceBusNamespaceId: serviceBus.outputs.namespaceId
    queueName: queueName
    eventTopicId: eventTopic.outputs.id
    appInsightsId: monitoring.outputs.appInsightsId
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Outputs: what the code deployment and the operators need
// ---------------------------------------------------------------------------------------------------------------

@description('Function App name (for az functionapp commands).')
output functionAppName string = functionApp.outputs.name

@description('Hosting plan, which decides the code deployment command (infra/README.md, scripts/package.sh --plan).')
output hostingPlan string = functionApp.outputs.hostingPlan

@description('Function App host name (the Migrations HTTP API lives under /api/migrations).')
output functionAppHostName string = functionApp.outputs.defaultHostName

@description('Storage account and container that hold the deployment package (dist/lrs-autopilot.zip). ElasticPremium and Dedicated upload to it; on FlexConsumption the platform writes there.')
output packageStorageAccount string = hostStorage.outputs.accountName

@description('Container of the deployment package.')
output packageContainer string = hostStorage.outputs.packageContainer

@description('Blob name of the deployment package.')
output packageBlob string = hostStorage.outputs.packageBlob

@description('Backup storage account (where SQL Server writes its backups).')
output backupStorageAccount string = storageAccountName

@description('Backup storage blob endpoint (BACKUP TO URL / AzCopy target).')
output backupBlobEndpoint string = backupStorage.outputs.blobEndpoint

@description('Application Insights resource id (status, traces, alerts).')
output appInsightsId string = monitoring.outputs.appInsightsId

@description('Client id of the app\'s user-assigned identity.')
output appIdentityClientId string = appIdentity.properties.clientId
