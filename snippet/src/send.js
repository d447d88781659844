// Batching and transport to POST {api}/e (docs/wire-format.md), retries, the stored backlog.
import { K, E, T, rid } from './config.js'
import { ok, blocked, V, S, keep, get, put, consent } from './consent.js'

var Q = (ok && T(JSON.parse, get('smsr_q'))) || [] // events to send, first those a past page could not
var H = [] // events held until smsr('consent', true)
var W = 0 // no sending before this time (Retry-After or backoff)
var B = 1 // backoff, seconds: 2, 4, 8 ... while the page lives (the backlog starts afresh)

// Unsent events outlive the page (bounded) where storing is allowed; "[]" once all is sent.
var save = () => ok && put('smsr_q', JSON.stringify(Q.slice(0, 200)))

// Network error, 429 or 503: put the events back and wait (flush() holds them until W). Any
// other answer means sent, or refused for good.
var fail = (e, ra) => {
  Q = e.concat(Q)
  ra = (+ra || (B *= 2)) * 1e3
  W = Date.now() + ra
  save()
}

var post = (e, beacon) => {
  var body = JSON.stringify({ v: 1, k: K, vid: V, sid: S, e })
  ;(beacon && navigator.sendBeacon(E, body)) ||
    fetch(E, { method: 'POST', body, keepalive: true }).then(
      (r) => (r.status == 429 || r.status == 503 ? fail(e, r.headers.get('Retry-After')) : save()),
      () => fail(e)
    )
}

// Sends all that waits, in batches of 50, unless Retry-After or the backoff says wait: then the
// next tick tries again. beacon truthy: the page is being hidden or unloaded, so use sendBeacon
// (and keep what must wait for the next page load).
export var flush = (beacon) =>
  T(() => {
    if (Date.now() < W) return beacon && save()
    while (Q[0]) keep(), post(Q.splice(0, 50), beacon)
  })

// Records event n (a built-in's code, docs/wire-format.md, or a custom name) with props p.
// Codes above 3 (form_submit, cart_update, purchase, optin) go at once, the rest with the next
// tick (track.js). An opt-in (7; not a custom "7") goes even without consent. Returns the event.
export var add = (n, p) => {
  var e = { i: rid(), n, t: Date.now(), u: location.href, ti: document.title, p }
  ok || n === 7 ? (Q.push(e), n > 3 && flush()) : blocked || H.push(e)
  return e
}

// smsr('consent', v): then send what was held, or drop everything not yet sent.
export var release = (v) => {
  Q = consent(v) ? Q.concat(H) : []
  H = []
  flush()
}
