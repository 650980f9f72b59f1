// Web QR login confirmed in the mini program. The web page makes a QR login (an id for WeChat's
// mini-program code and a secret it keeps), the user scans the code in the mini program, sees what
// is asking (the web client's IP, user agent, time), confirms or cancels, and the page that holds the
// secret collects a token pair of a new `web` session once. Each step is one atomic store operation;
// against QR login hijacking only the creating browser (the secret) can collect.
import {
  AuthQrCollectedError, AuthQrExpiredError, AuthQrNotFoundError, AuthQrOtherUserError, AuthQrSecretInvalidError, AuthQrSessionEndedError,
  AuthQrStateError, AuthWrongAppError
} from './errors.js'
import { digest, randomId, userTag } from './ids.js'
import type { AccessClaims } from './schemas.js'
import { orPutBack, type SessionOpener } from './session-opener.js'
import type { LoginDevice, OpenedPair, SessionsDeps } from './sessions-deps.js'
import type { HandoffStore, QrOutcome, QrRecord, QrState, QrStep } from './store/types.js'

/** The device type of a session made by a QR login. */
export const QR_DEVICE_TYPE = 'web'
/** A QR login is remembered this long past its expiry, however it ended, so that pollers are told how it ended. */
export const QR_KEEP_MS = 5 * 60 * 1000
/** 128 bits: 22 base64url characters, a valid WeChat `scene` (at most 32 of its set). */
const ID_BYTES = 16
const SECRET_BYTES = 32

/** What a QR login's state says to whoever polls it. */
export interface QrView { state: QrState, expiresIn: number }
const viewOf = (r: QrRecord): QrView => ({ state: r.state, expiresIn: Math.max(0, Math.ceil((r.expiresAt - Date.now()) / 1000)) })

/** AUTH_QR_STATE for a step the login's state does not allow, the state in its detail. */
const stateError = (state: QrState): Error => Object.assign(new AuthQrStateError(state), { detail: { state } })

function refused (outcome: QrOutcome): QrRecord {
  if (outcome.status === 'ok') return outcome.record
  const detail = outcome.state === undefined ? {} : { detail: { state: outcome.state } }
  switch (outcome.why) {
    case 'missing': throw new AuthQrNotFoundError()
    case 'expired': throw new AuthQrExpiredError()
    case 'wrong-app': throw new AuthWrongAppError()
    case 'other-user': throw Object.assign(new AuthQrOtherUserError(), detail)
    case 'wrong-secret': throw new AuthQrSecretInvalidError()
    case 'collected': throw new AuthQrCollectedError()
    default: throw outcome.state === undefined ? new AuthQrStateError('unknown') : stateError(outcome.state)
  }
}

type QrDeps = { store: HandoffStore, config: SessionsDeps['config'] & { QR_TTL?: number }, wechat: Pick<SessionsDeps['wechat'], 'appOf'> }

export function createQrLogin ({ store, config, wechat }: QrDeps, opener: SessionOpener) {
  const ttlMs = (config.QR_TTL ?? 300) * 1000

  /** A new QR login of mini program `appid` for the web client `client`: its id, the secret to keep, its lifetime. */
  async function create (client: { ip: string, userAgent?: string }, appid?: string): Promise<{ id: string, secret: string, expiresIn: number }> {
    const app = wechat.appOf(appid)
    opener.checkDeviceType(QR_DEVICE_TYPE)
    const id = randomId(ID_BYTES)
    const secret = randomId(SECRET_BYTES)
    const made = await store.createQr(id, { appid: app, secretHash: digest(secret), ttlMs, ip: client.ip, userAgent: (client.userAgent ?? '').slice(0, 256) }, QR_KEEP_MS)
    return { id, secret, expiresIn: viewOf(made).expiresIn }
  }

  /** The QR login's state (AUTH_QR_NOT_FOUND once forgotten), and its mini program. */
  async function status (id: string): Promise<QrView & { appid: string }> {
    const record = await store.getQr(id)
    if (record === null) throw new AuthQrNotFoundError()
    return { ...viewOf(record), appid: record.appid }
  }

  /**
   * The mini program whose code the QR login's image is, while someone may still scan it (pending,
   * scanned): AUTH_QR_EXPIRED, or AUTH_QR_STATE once confirmed or cancelled, which then cost no WeChat call.
   */
  async function scannableApp (id: string): Promise<string> {
    const { state, appid } = await status(id)
    if (state === 'expired') throw new AuthQrExpiredError()
    if (state !== 'pending' && state !== 'scanned') throw stateError(state)
    return appid
  }

  async function step (user: AccessClaims, id: string, which: QrStep): Promise<QrRecord> {
    // A cookie-mode session neither scans nor confirms (AUTH_HANDOFF_REFUSED); cancelling gives nothing away.
    if (which !== 'cancel') await opener.checkHandoff(user)
    return refused(await store.stepQr(id, which, user.aud, { tag: userTag(user.aud, user.sub), sid: user.sid }))
  }

  /** The mini program's user scans: told what is asking, for the confirmation screen. */
  async function scan (user: AccessClaims, id: string) {
    const r = await step(user, id, 'scan')
    return { ...viewOf(r), client: { ip: r.ip, userAgent: r.userAgent, createdAt: new Date(r.createdAt).toISOString() } }
  }

  /**
   * The web page collects once with its secret: a token pair of a new `web` session for the user
   * who confirmed, under the session rules. A session the rules refuse (AUTH_DEVICE_IN_USE) or the
   * store failing leaves it collectable; a ban, or the confirming session's end, does not.
   */
  async function collect (id: string, secret: string, device: Omit<LoginDevice, 'deviceType'>): Promise<OpenedPair> {
    const r = refused(await store.collectQr(id, digest(secret)))
    if (r.scanner === null) throw new AuthQrStateError(r.state)
    // Refused (but for a ban) or failed: collectable again, not AUTH_QR_COLLECTED for nothing collected.
    const pair = await orPutBack(opener.openSessionLike(r.appid, r.scanner, { ...device, deviceType: QR_DEVICE_TYPE }, 'qr'), async () => { await store.uncollectQr(id) })
    if (pair === null) throw new AuthQrSessionEndedError()
    return pair
  }

  return {
    create,
    status,
    scannableApp,
    scan,
    confirm: async (user: AccessClaims, id: string): Promise<QrView> => viewOf(await step(user, id, 'confirm')),
    cancel: async (user: AccessClaims, id: string): Promise<QrView> => viewOf(await step(user, id, 'cancel')),
    collect,
    /** Calls `listener` after changes of the QR login, on any instance, and as the store stops and starts answering; returns the unsubscribe. */
    watch: (id: string, listener: () => void): (() => void) => store.watchQr(id, listener)
  }
}

export type QrLogin = ReturnType<typeof createQrLogin>
