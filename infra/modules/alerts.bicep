// Alert rules. Metric alerts: a message in the queue's dead-letter queue, an event Event Grid gave up on, a failed
// function invocation. Log alerts on the handler's structured lines (JSON, LRS_LOG_FORMAT=json), one alert per
// database (dimension `db`):
//   - message "database blocked"        : a database needs a person (broken chain, foreign database, failed start);
//   - message "lrs 30-day limit near"   : LRS cancels a restore 30 days after it started;
//   - message "lrs database lost" or "lrs failed": the database disappeared after its start (a failover,
//     a Business Critical update, the 30-day cancel; `restart` it) or LRS failed for good.
//   - message "storage access refused"  : storage answered 401/403 (a role assignment or SAS), a configuration
//                                         error that fails every event until fixed.
// The binary must keep those messages and the `db` field (infra/README.md says so).

@description('Region of the log alert rules.')
param location string

@description('Tags.')
param tags object

@description('Name prefix, e.g. lrs-<team>.')
param namePrefix string

@description('Action group to notify; empty for none.')
param actionGroupId string

@description('Service Bus namespace resource id.')
param serviceBusNamespaceId string

@description('Queue name (metric dimension EntityName).')
param queueName string

@description('Event Grid system topic resource id.')
param eventTopicId string

@description('Application Insights resource id.')
param appInsightsId string

var metricActions = empty(actionGroupId) ? [] : [
  {
    actionGroupId: actionGroupId
  }
]
var logActions = {
  actionGroups: empty(actionGroupId) ? [] : [
    actionGroupId
  ]
}

// Reads the `db` field whether the line is JSON (nested under "fields" by tracing-subscriber, or flattened) or
// text (`db=name`).
var dbColumn = '''extend db = coalesce(tostring(parse_json(message).fields.db), tostring(parse_json(message).db), extract(@'\bdb="?([^" ]+)', 1, message))'''

resource deadLettered 'Microsoft.Insights/metricAlerts@2018-03-01' = {
  name: '${namePrefix}-queue-dead-letters'
  location: 'global'
  tags: tags
  properties: {
    description: 'A backup event was dead-lettered after 10 failed deliveries to the handler: the file was never recorded. Read the dead-letter queue (see infra/README.md).'
    severity: 1
    enabled: true
    scopes: [
      serviceBusNamespaceId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    autoMitigate: true
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
      allOf: [
        {
          criterionType: 'StaticThresholdCriterion'
          name: 'DeadletteredMessages'
          metricNamespace: 'Microsoft.ServiceBus/namespaces'
          metricName: 'DeadletteredMessages'
          dimensions: [
            {
              name: 'EntityName'
              operator: 'Include'
              values: [
                queueName
              ]
            }
          ]
          operator: 'GreaterThan'
          threshold: 0
          timeAggregation: 'Maximum'
        }
      ]
    }
    actions: metricActions
  }
}

resource eventsDeadLettered 'Microsoft.Insights/metricAlerts@2018-03-01' = {
  name: '${namePrefix}-event-grid-dead-letters'
  location: 'global'
  tags: tags
  properties: {
    description: 'Event Grid could not deliver a BlobCreated event to the queue for a day and dead-lettered it to the dead-letter container.'
    severity: 1
    enabled: true
    scopes: [
      eventTopicId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    autoMitigate: true
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
      allOf: [
        {
          criterionType: 'StaticThresholdCriterion'
          name: 'DeadLetteredCount'
          metricNamespace: 'Microsoft.EventGrid/systemTopics'
          metricName: 'DeadLetteredCount'
          operator: 'GreaterThan'
          threshold: 0
          timeAggregation: 'Total'
        }
      ]
    }
    actions: metricActions
  }
}

resource handlerFailures 'Microsoft.Insights/metricAlerts@2018-03-01' = {
  name: '${namePrefix}-handler-failures'
  location: 'global'
  tags: tags
  properties: {
    description: 'A function invocation failed (the handler answered non-2xx or timed out); Service Bus will retry it.'
    severity: 2
    enabled: true
    scopes: [
      appInsightsId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    autoMitigate: true
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
      allOf: [
        {
          criterionType: 'StaticThresholdCriterion'
          name: 'FailedRequests'
          metricNamespace: 'Microsoft.Insights/components'
          metricName: 'requests/failed'
          operator: 'GreaterThan'
          threshold: 0
          timeAggregation: 'Count'
        }
      ]
    }
    actions: metricActions
  }
}

resource databaseBlocked 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: '${namePrefix}-database-blocked'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'lrs-autopilot: database blocked'
    description: 'A database needs a person: see its state (lrs-autopilot status, or GET /api/migrations/<db>) for the reason.'
    severity: 1
    enabled: true
    scopes: [
      appInsightsId
    ]
    evaluationFrequency: 'PT15M'
    windowSize: 'PT15M'
    criteria: {
      allOf: [
        {
          query: 'traces | where message has "database blocked" | ${dbColumn} | project timestamp, db'
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          dimensions: [
            {
              name: 'db'
              operator: 'Include'
              values: [
                '*'
              ]
            }
          ]
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: false
    actions: logActions
  }
}

resource databaseLostOrFailed 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: '${namePrefix}-database-lost-or-failed'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'lrs-autopilot: database lost or failed'
    description: 'A database disappeared after its start (Lost: lrs-autopilot restart <db>) or LRS failed: see its state (lrs-autopilot status, or GET /api/migrations/<db>) for the reason.'
    severity: 1
    enabled: true
    scopes: [
      appInsightsId
    ]
    evaluationFrequency: 'PT15M'
    windowSize: 'PT15M'
    criteria: {
      allOf: [
        {
          query: 'traces | where message has "lrs database lost" or message has "lrs failed" | ${dbColumn} | project timestamp, db'
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          dimensions: [
            {
              name: 'db'
              operator: 'Include'
              values: [
                '*'
              ]
            }
          ]
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: false
    actions: logActions
  }
}

resource thirtyDayLimit 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: '${namePrefix}-lrs-30-day-limit'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'lrs-autopilot: LRS 30-day limit near'
    description: 'LRS cancels a restore 30 days after it started: take the tail-log backup and cut over before then.'
    severity: 2
    enabled: true
    scopes: [
      appInsightsId
    ]
    evaluationFrequency: 'PT1H'
    windowSize: 'PT1H'
    criteria: {
      allOf: [
        {
          query: 'traces | where message has "lrs 30-day limit near" | ${dbColumn} | project timestamp, db'
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          dimensions: [
            {
              name: 'db'
              operator: 'Include'
              values: [
                '*'
              ]
            }
          ]
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: false
    actions: logActions
  }
}

resource storageAccessRefused 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: '${namePrefix}-storage-access-refused'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'lrs-autopilot: storage access refused'
    description: 'Storage answered 401/403 to the handler: a broken role assignment or SAS. Every event fails (and is dead-lettered) until it is fixed; then re-drive the dead letters or run lrs-autopilot resync (infra/README.md).'
    severity: 1
    enabled: true
    scopes: [
      appInsightsId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      allOf: [
        {
          query: 'traces | where message has "storage access refused" | project timestamp'
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: logActions
  }
}
