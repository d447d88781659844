// Batching and transport to POST {api}/e (docs/wire-format.md), retries, the stored backlog.
import { N, K, E, J, T, rid, L, d } from './config.js'
import { ls, ok, blocked, V, S, keep, get } from './consent.js'

var Q = T(J.parse, get(ls, 'smsr_q')) || [] // events to send, first those a past page could not
var H = [] // events held until smsr('consent', true)
var tm // the batch or retry timer
var W = 0 // no sending before this time (Retry-After or backoff)
var B = 1 // backoff, seconds

// Unsent events outlive the page, bounded; the key goes once all is sent.
var save = () => T(() => (Q[0] ? ls.setItem('smsr_q', J.stringify(Q.slice(0, 200))) : ls.removeItem('smsr_q')))

// Network error, 429 or 503: put the events back and wait. Any other answer means sent, or
// refused for good.
var fail = (e, ra) => {
  Q = e.concat(Q)
  ra = (+ra || Math.min((B *= 2), 300)) * 1e3
  W = Date.now() + ra - 9
  clearTimeout(tm)
  tm = setTimeout(flush, ra)
  save()
}

var post = (e, beacon) => {
  var body = J.stringify({ v: 1, k: K, vid: V, sid: S, e })
  ;(beacon && N.sendBeacon(E, body)) ||
    fetch(E, { method: 'POST', body, keepalive: true }).then(
      (r) => (r.status == 429 || r.status == 503 ? fail(e, r.headers.get('Retry-After')) : save()),
      () => fail(e)
    )
}

// beacon truthy: the page is being hidden or unloaded, so use sendBeacon.
export var flush = (beacon) =>
  T(() => {
    if (Date.now() < W) return save()
    clearTimeout(tm)
    tm = 0
    keep()
    while (Q[0]) post(Q.splice(0, 50), beacon)
  })

// Records event n with props p and sends it within a second, or at once when now is truthy.
// Returns the event (page views need its id).
export var add = (n, p, now, i, r) => {
  var e = { i: i || rid(), n, t: Date.now(), u: L.href.slice(0, 2048), ti: d.title.slice(0, 300), p, r }
  n == 'optin' || ok
    ? (Q.push(e), now ? flush() : (tm = tm || setTimeout(flush, 1e3)))
    : blocked || H.push(e)
  return e
}

// After smsr('consent', v): send what was held, or drop everything not yet sent.
export var release = (v) => {
  Q = v ? Q.concat(H) : []
  H = []
  flush()
}
