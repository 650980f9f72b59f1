// Test support: a real headless Chromium, Debian's package (apt-get install -y chromium) driven by
// playwright-core, which downloads no browser of its own. Where it is not installed the browser
// tests skip and say why, except in CI (CI=true), where they fail: .ci/run installs it.
import { existsSync } from 'node:fs'
import { chromium, type Browser } from 'playwright-core'

type Tap = { teardown: (fn: () => unknown) => void }

/** Where Chromium is: CHROMIUM_PATH, else Debian's /usr/bin/chromium. */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const inCI = process.env.CI === 'true'
const missing = `Chromium is not installed at ${CHROMIUM} (apt-get install -y chromium, or set CHROMIUM_PATH)`

/** A test option: why a browser test skips here, or false when it runs (always in CI, where a missing Chromium fails). */
export const browserSkip = (): string | false => existsSync(CHROMIUM) || inCI ? false : missing

/** A headless Chromium, closed at teardown. */
export async function launchChromium (t: Tap): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`${missing}; CI=true runs every browser test`)
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    // Chromium's sandbox refuses to run as root (containers, CI); /dev/shm is small in containers.
    args: [...(process.getuid?.() === 0 ? ['--no-sandbox'] : []), '--disable-dev-shm-usage'],
    timeout: 15_000
  })
  t.teardown(async () => await browser.close())
  return browser
}
