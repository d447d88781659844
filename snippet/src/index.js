// Entry: replace the queue stub with the real smsr() and replay the calls made before we loaded.
import { w, T } from './config.js'
import { consent } from './consent.js'
import { add, release } from './send.js'
import { start } from './track.js'

var M = { cart: 'cart_update', checkout: 'checkout_start', purchase: 'purchase', optin: 'optin' }

var smsr = (c, a, b) => {
  var n = M[c] || (c == 'track' && /^[a-z0-9_]{1,40}$/.test(a) && a)
  if (c == 'consent') consent(a), release(a)
  // checkout_start and custom events wait for the batch; cart_update, purchase and optin don't.
  else if (n) n == a ? add(n, b) : add(n, a, c != 'checkout')
  // Misuse is the one thing we throw for, so the developer sees it.
  else throw Error('smsr: ' + c)
}

var q = w.smsr && w.smsr.q
w.smsr = smsr
T(start)
// Each queued call in its own task, in order: one bad call can't stop the others.
;(q || []).forEach((a) => setTimeout(() => smsr(...a)))
