// deploy/: the Dockerfile, compose file and Kubernetes example cannot run here (no container engine),
// so what they say is checked against the code: the command and files exist in the package, the
// probes name the health routes, every variable they set is a configuration key; the Grafana
// dashboard queries only metrics, and labels, the gateway exports.
import { readFileSync } from 'node:fs'
import { test } from 'tap'
import { parseAllDocuments } from 'yaml'
import { ConfigSchema } from '../lib/schemas.js'
import { buildApp, startSim } from './helper.js'

const read = (path: string): string => readFileSync(new URL(`../${path}`, import.meta.url), 'utf8')
const KEYS = new Set(Object.keys(ConfigSchema.properties))
const pkg = JSON.parse(read('package.json')) as { files: string[], bin: Record<string, string>, engines: { node: string } }

test('the Dockerfile runs the packaged server as a non-root user, checks liveness, and sets only configuration keys', async (t) => {
  const docker = read('deploy/Dockerfile')
  t.match(docker, /^CMD \["node", "dist\/server\.js"\]$/m, 'the command')
  t.equal(pkg.bin['fastify-wechat-auth'], 'dist/server.js', 'the same file the bin runs')
  t.ok(pkg.files.includes('dist'), 'shipped in the package')
  t.match(docker, /^USER node$/m, 'not root')
  t.match(docker, /HEALTHCHECK[\s\S]*\/health\/live/, 'health check on liveness')
  t.match(docker, /^FROM node:20/m, `the Node major the engines field allows (${pkg.engines.node})`)
  for (const [, key] of docker.matchAll(/^ENV ([\s\S]+?)$/gm)) {
    for (const pair of (key as string).split(/\s+/)) t.ok(KEYS.has(pair.split('=')[0] as string), `ENV ${pair}: a configuration key`)
  }
})

test('the compose file and the Kubernetes example: health routes and configuration keys only', async (t) => {
  const compose = parseAllDocuments(read('deploy/compose.yaml'))[0]?.toJS() as { services: Record<string, { environment?: Record<string, string> }> }
  for (const key of Object.keys(compose.services.gateway?.environment ?? {})) t.ok(KEYS.has(key), `compose: ${key} is a configuration key`)
  const docs = parseAllDocuments(read('deploy/kubernetes.yaml')).map((d) => d.toJS() as Record<string, any>)
  t.same(docs.map((d) => d.kind), ['Secret', 'Deployment', 'Service'])
  for (const key of Object.keys(docs[0]?.stringData ?? {})) t.ok(KEYS.has(key), `Secret: ${key} is a configuration key`)
  const container = docs[1]?.spec.template.spec.containers[0]
  t.equal(container.readinessProbe.httpGet.path, '/health', 'readiness: the store answers')
  t.equal(container.livenessProbe.httpGet.path, '/health/live', 'liveness: the process serves')
  for (const { name } of container.env) t.ok(KEYS.has(name), `env: ${String(name)} is a configuration key`)
  const metricsPort = container.env.find((e: { name: string }) => e.name === 'METRICS_PORT')?.value
  t.ok(container.ports.some((p: { containerPort: number, name: string }) => p.name === 'metrics' && String(p.containerPort) === metricsPort), 'the metrics port is the one METRICS_PORT sets')
  t.equal(docs[1]?.spec.template.metadata.annotations['prometheus.io/port'], metricsPort, 'and the one the scrape annotation names')
  t.ok(docs[1]?.spec.template.spec.terminationGracePeriodSeconds > 10, 'longer than the drain (10 s)')
})

test('the Grafana dashboard charts only metrics the gateway exports, each query by its labels', async (t) => {
  const dashboard = JSON.parse(read('deploy/grafana-dashboard.json')) as { uid: string, panels: Array<{ title: string, targets: Array<{ expr: string }> }> }
  const sim = await startSim(t)
  const app = await buildApp(t, { sim, metrics: true })
  const { registry } = app.wechatAuthMetrics
  const labelsOf = (name: string): string[] => (registry.getSingleMetric(name) as unknown as { labelNames: string[] }).labelNames
  const exported = new Map((await registry.getMetricsAsJSON()).map((m) => [m.name, new Set([...labelsOf(m.name), ...(String(m.type) === 'histogram' ? ['le'] : [])])]))
  t.ok(dashboard.panels.length >= 12)
  for (const panel of dashboard.panels) {
    for (const { expr } of panel.targets) {
      const names = [...expr.matchAll(/\b((?:wechat_auth|nodejs|process)_[a-z0-9_]+)/g)].map((m) => m[1] as string)
      t.ok(names.length > 0, `${panel.title}: queries a metric`)
      for (const name of names) {
        const base = name.replace(/_(bucket|count|sum)$/, '')
        const labels = exported.get(name) ?? exported.get(base)
        t.ok(labels, `${panel.title}: ${name} is exported`)
        // Labels grouped by or matched on: each one the metric has (job and instance come from the scraper).
        const used = [...expr.matchAll(/by \(([^)]*)\)/g)].flatMap((m) => (m[1] as string).split(',').map((s) => s.trim()))
          .concat([...expr.matchAll(/([a-z_]+)(?:=~|!=|=)"/g)].map((m) => m[1] as string))
          .filter((l) => l !== 'job' && l !== 'instance')
        for (const label of used) t.ok(labels?.has(label), `${panel.title}: ${name} has the label ${label}`)
      }
    }
  }
})
