// Sends track, page and identify calls through the real @segment/analytics-node
// client to a local Kairos ingest, then flushes. Used by tests/segment_node.rs.
// Env: KAIROS_HOST (e.g. http://127.0.0.1:PORT), KAIROS_WRITE_KEY.
'use strict'
const { Analytics } = require('@segment/analytics-node')

const host = process.env.KAIROS_HOST
const writeKey = process.env.KAIROS_WRITE_KEY
if (!host || !writeKey) {
  console.error('KAIROS_HOST and KAIROS_WRITE_KEY are required')
  process.exit(2)
}

const analytics = new Analytics({ writeKey, host, flushAt: 20, flushInterval: 100, maxRetries: 0 })
analytics.on('error', (err) => {
  console.error('delivery failed:', err && err.reason ? String(err.reason) : err)
  process.exitCode = 1
})
analytics.on('http_response', (res) => console.log(`HTTP ${res.status} ${res.url}`))

const ids = { userId: 'user-42', anonymousId: 'anon-7f3c' }
analytics.page({
  anonymousId: ids.anonymousId,
  name: 'Pricing',
  properties: { url: 'https://www.example.com/pricing', title: 'Pricing' },
  context: { campaign: { name: 'spring-launch', source: 'newsletter' } },
})
analytics.identify({ ...ids, traits: { email: 'ada@example.com', title: 'CTO', employees: 120 } })
analytics.track({ ...ids, event: 'Form Submitted', properties: { form: 'demo-request' } })
analytics.track({ userId: ids.userId, event: 'Plan Compared', properties: { plans: 2 } })

analytics
  .closeAndFlush({ timeout: 10000 })
  .then(() => console.log('flushed'))
  .catch((err) => {
    console.error('flush failed:', err)
    process.exitCode = 1
  })
