// Entry: replace the queue stub with the real smsr() and replay the calls made before we loaded.
import { T } from './config.js'
import { add, release } from './send.js'
import { start } from './track.js'

// The calls that record a built-in event, and its wire code.
var M = { checkout: 3, cart: 5, purchase: 6, optin: 7 }

var api = (c, a, b) => {
  var n = M[c] || (c == 'track' && /^[a-z0-9_]{1,40}$/.test(a) && a)
  if (c == 'consent') release(a)
  else if (n) add(n, n == a ? b : a)
  // Misuse is the one thing we throw for, so the developer sees it.
  else throw Error('smsr: ' + c)
}

// Each queued call in its own task, in order: one bad call can't stop the others.
T(() => window.smsr.q.forEach((a) => setTimeout(() => api(...a))))
window.smsr = api
T(start)
