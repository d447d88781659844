// Privacy state (GPC, Do-Not-Track, data-require-consent) and the ids it lets us store.
import { d, N, K, D, T, rid } from './config.js'

export var ls = T(() => localStorage) // the getter itself throws where storage is blocked
var ss = T(() => sessionStorage)

export var get = (o, k) => T(() => o.getItem(k))
// Returns 1 when the write worked, so the visitor id can fall back to a cookie.
export var put = (o, k, v) => T(() => (o.setItem(k, v), 1))

export var blocked = N.globalPrivacyControl || N.doNotTrack == 1

// May we record and store? (An opt-in the visitor submits is sent even when not.)
export var ok = !blocked && (D.requireConsent != 'true' || get(ls, 'smsr_ok') == K)

// Ids are read from storage only when allowed, else made up for this page. keep() stores them
// once allowed, so an opt-in sent before consent and the visits after it share one visitor.
export var V = (ok && (get(ls, 'smsr_vid') || T(() => d.cookie.match(/smsr_vid=(\d+)/)[1]))) || rid()
export var S = (ok && get(ss, 'smsr_sid')) || rid()

export var keep = () =>
  ok &&
  (put(ls, 'smsr_vid', V) || T(() => (d.cookie = 'smsr_vid=' + V + ';max-age=34560000;path=/')),
  put(ss, 'smsr_sid', S))

// smsr('consent', v). Refusing also forgets the stored visitor id.
export var consent = (v) => {
  ok = !blocked && !!v
  blocked || (put(ls, 'smsr_ok', v ? K : ''), v || put(ls, 'smsr_vid', ''))
}
