// Page globals and the script tag's data- attributes, read once at load.

var s = document.currentScript
export var D = s.dataset

export var K = D.site
// The collector is the script's own origin unless data-api names another base URL.
export var E = new URL((D.api || '').replace(/\/?$/, '/e'), s.src)

// Runs f(a) and swallows what it throws: the snippet must never throw into the host page.
export var T = (f, a) => {
  try {
    return f(a)
  } catch (e) {}
}

// A random id for visitors, sessions and events: the 15-17 decimal digits of a Math.random()
// (about 52 bits; a number below 1e-6 ends in e-N, still valid on the wire).
export var rid = () => (Math.random() + '').slice(2)
