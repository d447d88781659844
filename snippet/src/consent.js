// Privacy state (GPC, Do-Not-Track, data-require-consent) and the ids it lets us store.
import { K, D, T, rid } from './config.js'

// Storage throws where it is blocked, so every access goes through T. put() returns 1 when the
// write worked, so the visitor id can fall back to a cookie.
export var get = (k) => T(() => localStorage[k])
export var put = (k, v) => T(() => ((localStorage[k] = v), 1))

export var blocked = navigator.globalPrivacyControl || navigator.doNotTrack == 1

// May we record and store? (An opt-in the visitor submits is sent even when not.)
export var ok = !blocked && (D.requireConsent != 'true' || get('smsr_ok') == K)

// Ids are read from storage only when allowed, else made up for this page. keep() stores them
// once allowed, so an opt-in sent before consent and the visits after it share one visitor.
export var V = (ok && (get('smsr_vid') || T(() => document.cookie.match(/smsr_vid=([^;]+)/)[1]))) || rid()
export var S = (ok && T(() => sessionStorage.smsr_sid)) || rid()

export var keep = () =>
  ok &&
  (put('smsr_vid', V) || T(() => (document.cookie = 'smsr_vid=' + V + ';max-age=34560000;path=/')),
  T(() => (sessionStorage.smsr_sid = S)))

// smsr('consent', v). Refusing also forgets the stored visitor id.
export var consent = (v) => (
  (ok = !blocked && v), blocked || (put('smsr_ok', v ? K : ''), v || put('smsr_vid', '')), v
)
