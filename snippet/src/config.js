// Page globals and the script tag's data- attributes, read once at load.
export var w = window
export var d = document
export var L = location
export var N = navigator
export var J = JSON

var s = d.currentScript
export var D = s.dataset

export var K = D.site
// The collector is the script's own origin unless data-api names another base URL.
export var E = (D.api || new URL(s.src).origin).replace(/\/?$/, '/e')

// Runs f(a) and swallows what it throws: the snippet must never throw into the host page.
export var T = (f, a) => {
  try {
    return f(a)
  } catch (e) {}
}

// Four random 32-bit numbers in decimal: ~38 digits, valid for every id on the wire.
export var rid = () => crypto.getRandomValues(new Uint32Array(4)).join('')
