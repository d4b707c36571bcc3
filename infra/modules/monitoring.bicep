// Log Analytics + workspace-based Application Insights. Local (key) authentication is off: the Functions host
// sends telemetry with the app's identity (APPLICATIONINSIGHTS_AUTHENTICATION_STRING), which needs Monitoring
// Metrics Publisher on the component.

@description('Region.')
param location string

@description('Tags.')
param tags object

@description('Name prefix, e.g. lrs-<team>.')
param namePrefix string

@description('Days the workspace keeps logs.')
param retentionDays int

@description('Principal id of the identity that publishes telemetry (the app).')
param publisherPrincipalId string

var monitoringMetricsPublisher = '3913510d-42f4-4e42-8a64-420c390055eb'

resource workspace 'Microsoft.OperationalInsights/workspaces@2022-10-01' = {
  name: '${namePrefix}-logs'
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: retentionDays
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: '${namePrefix}-insights'
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: workspace.id
    DisableLocalAuth: true
  }
}

resource publisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, publisherPrincipalId, monitoringMetricsPublisher)
  scope: appInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringMetricsPublisher)
    principalId: publisherPrincipalId
    principalType: 'ServicePrincipal'
  }
}

@description('Application Insights resource id.')
output appInsightsId string = appInsights.id

@description('Application Insights connection string (not a secret once local auth is off: ingestion needs Entra ID).')
output appInsightsConnectionString string = appInsights.properties.ConnectionString
