// The Function App: Linux, custom handler (the lrs-autopilot binary, see host.json), on Flex Consumption (default),
// Elastic Premium or a Dedicated App Service plan, with one user-assigned identity. Every connection is identity-based:
// no key, no connection string with a secret, no Azure Files content share (it needs a key).
//
// Where the code comes from differs by plan. Flex Consumption reads it from the deployment container named in
// functionAppConfig (with the app's identity) and takes the runtime from functionAppConfig.runtime; it rejects or
// ignores the classic settings (FUNCTIONS_WORKER_RUNTIME, FUNCTIONS_EXTENSION_VERSION, WEBSITE_RUN_FROM_PACKAGE: see
// "Flex Consumption plan deprecations" in Microsoft's app settings reference). Elastic Premium and Dedicated run the
// package blob named by WEBSITE_RUN_FROM_PACKAGE.
//
// The app settings are exactly the variables the binary reads (src/config.rs VARIABLES) plus the Functions platform's
// own; tests/infra.rs checks the names between the two markers below against that list, for each plan.

@description('Region.')
param location string

@description('Tags.')
param tags object

@description('Function App name (globally unique host name).')
param appName string

@description('FlexConsumption, ElasticPremium or Dedicated.')
@allowed([
  'FlexConsumption'
  'ElasticPremium'
  'Dedicated'
])
param hostingPlan string

@description('Elastic Premium size.')
param premiumSku string

@description('Dedicated size.')
param dedicatedSku string

@description('ElasticPremium only: scale-out limit.')
param maximumElasticWorkerCount int

@description('FlexConsumption only: memory of each instance in MB.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int

@description('FlexConsumption only: most instances the app may scale out to.')
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int

@description('FlexConsumption only: URL of the blob container the platform keeps the deployed package in.')
param deploymentContainerUrl string

@description('Resource id of the app\'s user-assigned identity.')
param identityId string

@description('Client id of the app\'s user-assigned identity.')
param identityClientId string

@description('Host storage account name (AzureWebJobsStorage).')
param hostStorageAccountName string

@description('ElasticPremium and Dedicated: URL of the package blob the app runs from (WEBSITE_RUN_FROM_PACKAGE).')
param packageUrl string

@description('Application Insights connection string.')
param appInsightsConnectionString string

@description('Service Bus namespace host name.')
param serviceBusNamespaceHost string

@description('ARM endpoint (LRS_ARM_ENDPOINT).')
param armEndpoint string

@description('Subscription of the default managed instance (empty: no default instance).')
param subscriptionId string

@description('Resource group of the default managed instance (empty: no default instance).')
param managedInstanceResourceGroup string

@description('Default managed instance name (empty: no default instance).')
param managedInstanceName string

@description('LRS_TARGETS: JSON object from a container or container/folder to a managed instance resource id; empty for none.')
param lrsTargets string = ''

@description('Backup storage blob endpoint, no trailing slash.')
param storageAccountUrl string

@description('Backup containers.')
param backupContainers array

@description('State container.')
param stateContainerName string

@description('ManagedIdentity or SharedAccessSignature.')
param lrsStorageAuth string

@description('SAS mode: unversioned Key Vault secret URI of the SAS token.')
param sasSecretUri string

@description('Default collation.')
param defaultCollation string

@description('Tail-log file-name pattern.')
param tailPattern string

@description('Most concurrent LRS restores.')
param maxConcurrentRestores int

@description('Folder to database name map.')
param databaseNameMap object

@description('Service Bus queue name.')
param queueName string

@description('CutoverTimer schedule.')
param timerSchedule string

var flex = hostingPlan == 'FlexConsumption'
var premium = hostingPlan == 'ElasticPremium'
var flexPlanSku = {
  name: 'FC1'
  tier: 'FlexConsumption'
}
var premiumPlanSku = {
  name: premiumSku
  tier: 'ElasticPremium'
}
var dedicatedPlanSku = {
  name: dedicatedSku
}

// Flex Consumption only: the runtime, where the code lives (read with the app's user-assigned identity, which has
// Storage Blob Data Owner on the host storage account) and how far the app scales. No always-ready instances: the
// pipeline is idle between uploads, Service Bus holds the events until an instance starts, and the timer tolerates
// a cold start.
var flexConfig = {
  runtime: {
    name: 'custom'
    version: '1.0'
  }
  deployment: {
    storage: {
      type: 'blobContainer'
      value: deploymentContainerUrl
      authentication: {
        type: 'UserAssignedIdentity'
        userAssignedIdentityResourceId: identityId
      }
    }
  }
  scaleAndConcurrency: {
    instanceMemoryMB: instanceMemoryMB
    maximumInstanceCount: maximumInstanceCount
  }
}

// Every plan: TLS 1.2 for the app and its SCM endpoint, HTTP/2, no remote debugging.
var secureSiteConfig = {
  minTlsVersion: '1.2'
  scmMinTlsVersion: '1.2'
  http20Enabled: true
  remoteDebuggingEnabled: false
}

// Elastic Premium and Dedicated only. Custom handler: no language stack image to pick (Flex takes the stack from
// functionAppConfig.runtime). FTP stays off (also through the ftp publishing policy below; Flex has no FTP). Dedicated
// plans unload idle apps unless Always On is set, which would stop the timer and the queue trigger; Elastic Premium
// keeps one instance warm instead.
var classicSiteConfig = {
  linuxFxVersion: ''
  ftpsState: 'Disabled'
  alwaysOn: !premium
  minimumElasticInstanceCount: premium ? 1 : 0
}

// app-settings:begin
var functionsSettings = [
  // Functions platform, every plan: identity-based host storage and Service Bus connection, telemetry sent with the
  // app's identity.
  {
    name: 'AzureWebJobsStorage__accountName'
    value: hostStorageAccountName
  }
  {
    name: 'AzureWebJobsStorage__credential'
    value: 'managedidentity'
  }
  {
    name: 'AzureWebJobsStorage__clientId'
    value: identityClientId
  }
  {
    name: 'ServiceBusConnection__fullyQualifiedNamespace'
    value: serviceBusNamespaceHost
  }
  {
    name: 'ServiceBusConnection__credential'
    value: 'managedidentity'
  }
  {
    name: 'ServiceBusConnection__clientId'
    value: identityClientId
  }
  {
    name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
    value: appInsightsConnectionString
  }
  {
    name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING'
    value: 'ClientId=${identityClientId};Authorization=AAD'
  }
]

var classicPlanSettings = [
  // Elastic Premium and Dedicated only (Flex Consumption takes these from functionAppConfig and rejects them as
  // settings): custom handler on runtime 4, code from the package blob read with the app's identity.
  {
    name: 'FUNCTIONS_WORKER_RUNTIME'
    value: 'custom'
  }
  {
    name: 'FUNCTIONS_EXTENSION_VERSION'
    value: '~4'
  }
  {
    name: 'WEBSITE_RUN_FROM_PACKAGE'
    value: packageUrl
  }
  {
    name: 'WEBSITE_RUN_FROM_PACKAGE_BLOB_MI_RESOURCE_ID'
    value: identityId
  }
]

var binarySettings = [
  // The variables lrs-autopilot reads (src/config.rs VARIABLES), every one set explicitly.
  {
    name: 'LRS_ARM_ENDPOINT'
    value: armEndpoint
  }
  {
    name: 'LRS_SUBSCRIPTION_ID'
    value: subscriptionId
  }
  {
    name: 'LRS_RESOURCE_GROUP'
    value: managedInstanceResourceGroup
  }
  {
    name: 'LRS_MANAGED_INSTANCE'
    value: managedInstanceName
  }
  // Container or container/folder -> instance (main.bicep's targets parameter); empty values read as unset.
  {
    name: 'LRS_TARGETS'
    value: lrsTargets
  }
  {
    name: 'LRS_STORAGE_ACCOUNT_URL'
    value: storageAccountUrl
  }
  {
    name: 'LRS_CONTAINERS'
    value: join(backupContainers, ',')
  }
  {
    name: 'LRS_STATE_CONTAINER'
    value: stateContainerName
  }
  {
    name: 'LRS_STORAGE_IDENTITY'
    value: lrsStorageAuth
  }
  {
    name: 'LRS_DEFAULT_COLLATION'
    value: defaultCollation
  }
  {
    name: 'LRS_TAIL_PATTERN'
    value: tailPattern
  }
  {
    name: 'LRS_MAX_CONCURRENT_RESTORES'
    value: string(maxConcurrentRestores)
  }
  {
    name: 'LRS_DATABASE_NAME_MAP'
    value: string(databaseNameMap)
  }
  {
    name: 'LRS_EVENTS_QUEUE'
    value: queueName
  }
  {
    name: 'LRS_TIMER_SCHEDULE'
    value: timerSchedule
  }
  // The timer's reconciliation pass (lrs-autopilot resync): one List Blobs call per 5,000 blobs per container.
  {
    name: 'LRS_RESYNC_INTERVAL_SECS'
    value: '21600'
  }
  // JSON lines: the log-based alerts read the `db` field of these lines.
  {
    name: 'LRS_LOG_FORMAT'
    value: 'json'
  }
  {
    name: 'AZURE_CLIENT_ID'
    value: identityClientId
  }
]

var sasSetting = [
  // SAS mode only: resolved by the platform from Key Vault with the app's identity; never in the template.
  {
    name: 'LRS_STORAGE_SAS_TOKEN'
    value: '@Microsoft.KeyVault(SecretUri=${sasSecretUri})'
  }
]
var sasSettings = lrsStorageAuth == 'SharedAccessSignature' ? sasSetting : []
// app-settings:end

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_225: zone redundancy needs at least three always-running instances and a region that offers it; the work is durable in Service Bus (an event not acknowledged is redelivered) and in the state documents, so losing an instance or a zone delays a migration but loses nothing
  name: '${appName}-plan'
  location: location
  tags: tags
  kind: flex ? 'functionapp' : (premium ? 'elastic' : 'linux')
  sku: flex ? flexPlanSku : (premium ? premiumPlanSku : dedicatedPlanSku)
  properties: {
    reserved: true
    maximumElasticWorkerCount: premium ? maximumElasticWorkerCount : null
  }
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_212: same reason as CKV_AZURE_225 on the plan: one instance is enough because Service Bus redelivers whatever a lost instance did not finish (Flex and Elastic Premium scale out on queue length anyway)
  // checkov:skip=CKV_AZURE_213: the Functions host probes the custom handler itself (GET / at start) and restarts it; an App Service health-check path would need an anonymous HTTP function, and the only HTTP API (Migrations) requires a function key
  // checkov:skip=CKV_AZURE_17: operators call the Migrations HTTP API with a function key; client certificates would add a second credential that no operator tool sends
  // checkov:skip=CKV_AZURE_15: checkov cannot read siteConfig built with union(); secureSiteConfig sets minTlsVersion 1.2 on every plan, checked by tests/infra.rs
  // checkov:skip=CKV_AZURE_18: checkov cannot read siteConfig built with union(); secureSiteConfig sets http20Enabled on every plan, checked by tests/infra.rs
  // checkov:skip=CKV_AZURE_67: same as CKV_AZURE_18: http20Enabled is true in secureSiteConfig on every plan, checked by tests/infra.rs
  // checkov:skip=CKV_AZURE_78: checkov cannot read siteConfig built with union(); FTP is off through the ftp publishing-credentials policy (allow false) on every plan and ftpsState Disabled on the plans that accept it (Flex rejects the property), checked by tests/infra.rs
  // checkov:skip=CKV_AZURE_222: the Migrations HTTP API (status, cutover) is the operators' interface and requires a function key; triggers do not need inbound access, so teams with a private network can set publicNetworkAccess to Disabled and add a private endpoint (infra/README.md)
  name: appName
  location: location
  tags: tags
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    reserved: true
    httpsOnly: true
    keyVaultReferenceIdentity: identityId
    publicNetworkAccess: 'Enabled'
    functionAppConfig: flex ? flexConfig : null
    // Flex rejects the classic-only site properties even when sent as null (error 51021 names linuxFxVersion and
    // ftpsState), so they are merged in on the other plans only.
    siteConfig: union(secureSiteConfig, flex ? {} : classicSiteConfig, {
      appSettings: concat(functionsSettings, flex ? [] : classicPlanSettings, binarySettings, sasSettings)
    })
  }
}

// Deployments go through the package blob (Elastic Premium, Dedicated) or one deploy with an Entra ID token (Flex),
// never FTP or basic-auth Kudu.
resource ftpPolicy 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmPolicy 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'scm'
  properties: {
    allow: false
  }
}

@description('Function App name.')
output name string = site.name

@description('Default host name.')
output defaultHostName string = site.properties.defaultHostName

@description('Hosting plan the app runs on.')
output hostingPlan string = hostingPlan
