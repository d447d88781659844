// What gets recorded: page views (landing, SPA, back/forward cache), pricing intent, forms, opt-ins.
import { w, d, L, T } from './config.js'
import { add, flush } from './send.js'

var Hi = history
var R = Hi.replaceState // the original, so removing smsr_c makes no page view
var last // location.href without its hash, at the last page view
var id // the last page view's id
var ref = d.referrer.slice(0, 2048)

export var pv = (force) =>
  T(() => {
    var c, k
    var h = L.href.replace(/([?&])smsr_c=([^&#]+)&?/, (x, a, t) => ((c = t), a)).replace(/[?&](?=#|$)/, '')
    c && R.call(Hi, Hi.state, '', h)
    k = L.href.split('#')[0]
    if (k != last || force) {
      last = k
      id = add('page_view', c && { c }, 0, 0, ref || void 0).i
      ref = 0
      d.querySelector('[data-smsr-intent=pricing]') && add('pricing_view', void 0, 0, id + 'p')
    }
  })

var on = (o, n, f) => o.addEventListener(n, (x) => T(f, x), true)
var A = (f, a) => f.getAttribute(a)
var q = (f, s) => f.querySelector(s)
// The form's name for events, or nothing for a form we don't track.
var name = (f) =>
  f &&
  !f.hasAttribute('data-smsr-ignore') &&
  (A(f, 'data-smsr-form') || A(f, 'id') || A(f, 'name') || new URL(A(f, 'action') || '', L).pathname).slice(0, 100)

// form_start once per form per page view: the form remembers the page view's id.
var started = (x) => {
  var f = x.target.form
  var n = name(f)
  n && f._smsr != id && ((f._smsr = id), add('form_start', { f: n }))
}

var submit = (x) => {
  var f = x.target
  var n = name(f)
  var c = q(f, 'form[data-smsr-optin] [type=checkbox][data-smsr-consent]:checked')
  var ph = q(f, 'input[type=tel],input[name*=phone i]')
  var fn = q(f, '[name=first_name],[autocomplete=given-name]')
  var l = c && c.labels[0]
  // The only field values the snippet ever reads: an opt-in the visitor ticked and submitted.
  n &&
    c &&
    ph &&
    ph.value &&
    add('optin', {
      phone: ph.value,
      first_name: fn && fn.value,
      consent_text: l && l.textContent.replace(/\s+/g, ' ').trim(),
      f: n,
    })
  n && add('form_submit', { f: n }, 1)
}

// SPA navigations are recorded 300 ms after the URL changes, once the new title and DOM are in.
export var start = () => {
  var nav = () => setTimeout(pv, 300)
  ;['pushState', 'replaceState'].forEach((m) => {
    var o = Hi[m]
    Hi[m] = function () {
      nav()
      return o.apply(this, arguments)
    }
  })
  on(w, 'popstate', nav)
  on(w, 'pageshow', (x) => x.persisted && pv(1))
  on(w, 'pagehide', flush) // the event is truthy: beacon mode
  on(d, 'visibilitychange', () => d.hidden && flush(1))
  on(d, 'input', started)
  on(d, 'change', started)
  on(d, 'submit', submit)
  // The landing page view waits for the DOM, to see a pricing marker.
  d.readyState == 'loading' ? on(d, 'DOMContentLoaded', pv) : pv()
}
