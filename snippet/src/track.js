// What gets recorded: page views (landing, SPA, back/forward cache), pricing intent, forms, opt-ins.
import { T } from './config.js'
import { add, flush } from './send.js'

var last // location.href without its hash, at the last page view
var seen // the same, at the last tick
var id // the last page view (its event)

// A page view when forced (landing, back/forward cache), or when the URL without its hash changed
// and held since the last tick: SPA navigations by pushState, replaceState or popstate are seen
// 1-2 s after, once the new title and DOM are in. Hash-only changes are not page views.
export var pv = (force) =>
  T(() => {
    var c, k
    var h = location.href.replace(/([?&])smsr_c=([^&#]+)&?/, (x, a, t) => ((c = t), a)).replace(/[?&](?=#|$)/, '')
    c && history.replaceState(history.state, '', h)
    k = h.split('#')[0]
    if (force || (last && k != last && k == seen)) {
      last = k
      // x: a pricing marker is on the page, so the collector adds the pricing_view;
      // r: the referrer, on the landing page view only.
      id = add(0, { c, x: document.querySelector('[data-smsr-intent=pricing]') && 1, r: !id && document.referrer })
    }
    seen = k
  })

// Every listener is on the window, in the capture phase: the document's events pass it first.
var on = (n, f) => addEventListener(n, (x) => T(f, x), true)
var A = (f, a) => f.getAttribute(a)
// The form's name for events, or nothing for a form we don't track.
var name = (f) =>
  f &&
  !f.hasAttribute('data-smsr-ignore') &&
  (A(f, 'data-smsr-form') || A(f, 'id') || A(f, 'name') || [A(f, 'action')])

// form_start once per form per page view: the form remembers the page view.
var started = (x) => {
  var f = x.target.form
  var n = name(f)
  n && f._smsr != id && ((f._smsr = id), add(2, { f: n }))
}

var submit = (x) => {
  var f = x.target
  var n = name(f)
  var q = (s) => f.querySelector(s) || 0
  var c = q('form[data-smsr-optin] [type=checkbox][data-smsr-consent]:checked')
  var ph
  // The only field values the snippet ever reads: an opt-in the visitor ticked and submitted, sent
  // as [phone, first name, the box's label text, form] (the collector collapses the whitespace).
  n &&
    (c &&
      (ph = q('input[type=tel],input[name*=phone i]').value) &&
      add(7, [ph, q('[name=first_name],[autocomplete=given-name]').value, (c.labels[0] || 0).textContent, n]),
    add(4, { f: n }))
}

export var start = () => {
  on('pageshow', (x) => pv(x.persisted)) // restored from the back/forward cache
  on('pagehide', flush) // the event is truthy: beacon mode
  on('visibilitychange', () => document.hidden && flush(1))
  on('input', started) // every form control fires input (then change) when the visitor edits it
  on('submit', submit)
  // The tick: SPA page views, and the batch of what was recorded since the last one.
  setInterval(() => (pv(), flush()), 1e3)
  // The landing page view waits for the DOM, to see a pricing marker.
  document.readyState == 'loading' ? on('DOMContentLoaded', pv) : pv(1)
}
