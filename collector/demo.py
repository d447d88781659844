"""The demo shop at `/demo/`, served by `smsretarget demo`: a pricing page, an SMS opt-in form,
a product page with a cart and a checkout, each carrying the real script tag.

Pages are static HTML; the cart lives in the browser's localStorage and every change is reported
with `smsr('cart', ...)`, exactly as a real shop would integrate.
"""

from __future__ import annotations

from html import escape

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

PRODUCTS = [
    ("tee", "Organic tee", 24.0),
    ("mug", "Stoneware mug", 18.5),
    ("cap", "Canvas cap", 21.0),
]

LAYOUT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title} · Demo shop</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{{font:16px/1.5 system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;color:#222}}
nav a{{margin-right:1rem}} .card{{border:1px solid #ddd;border-radius:8px;padding:1rem;margin:1rem 0}}
button{{font:inherit;padding:.4rem .9rem;border-radius:6px;border:1px solid #444;background:#fff}}
label{{display:block;margin:.5rem 0}} input[type=tel],input[type=text]{{font:inherit;padding:.3rem}}
</style>
<script>window.smsr=window.smsr||function(){{(smsr.q=smsr.q||[]).push(arguments)}}</script>
<script async src="{base}/s.js" data-site="{key}"></script>
</head><body>
<nav><a href="/demo/">Shop</a><a href="/demo/pricing">Pricing</a><a href="/demo/join">Text me deals</a>
<a href="/demo/checkout">Cart (<span id="count">0</span>)</a></nav>
<h1>{title}</h1>
{body}
<script>
function cart(){{try{{return JSON.parse(localStorage.getItem("demo_cart"))||[]}}catch(e){{return[]}}}}
function save(items){{
  localStorage.setItem("demo_cart",JSON.stringify(items));
  var value=items.reduce(function(s,i){{return s+i.qty*i.price}},0);
  smsr("cart",{{items:items,value:Math.round(value*100)/100,currency:"USD",url:location.origin+"/demo/checkout"}});
  show();
}}
function add(id,name,price){{
  var items=cart(),item=items.find(function(i){{return i.id===id}});
  if(item)item.qty+=1;else items.push({{id:id,name:name,qty:1,price:price}});
  save(items);
}}
function show(){{document.getElementById("count").textContent=cart().reduce(function(s,i){{return s+i.qty}},0)}}
show();
</script>
</body></html>"""


def _product_cards() -> str:
    cards = []
    for product_id, name, price in PRODUCTS:
        cards.append(
            f'<div class="card"><strong>{escape(name)}</strong> ${price:.2f} '
            f"<button id=\"add-{product_id}\" onclick=\"add('{product_id}','{escape(name)}',{price})\">"
            "Add to cart</button></div>"
        )
    return "\n".join(cards)


PAGES = {
    "": (
        "Demo shop",
        '<p>Try it: <a href="/demo/join">opt in to texts</a>, add something to the cart, then '
        "leave. Thirty seconds later the cart reminder is printed in the terminal running "
        "<code>smsretarget demo</code> (the console sender), unless you "
        '<a href="/demo/checkout">check out</a> first.</p>' + _product_cards(),
    ),
    "pricing": (
        "Pricing",
        '<section data-smsr-intent="pricing"><div class="card"><strong>Basic</strong> $9/month'
        '</div><div class="card"><strong>Pro</strong> $29/month</div></section>',
    ),
    "join": (
        "Get deals by text",
        '<form data-smsr-optin data-smsr-form="sms-optin" onsubmit="event.preventDefault();'
        "this.hidden=true;document.getElementById('thanks').hidden=false\">"
        '<label>First name <input type="text" name="first_name" autocomplete="given-name"></label>'
        '<label>Mobile number <input type="tel" name="phone" autocomplete="tel" required></label>'
        '<label><input type="checkbox" data-smsr-consent required> Yes, text me cart reminders and '
        "offers from Demo shop. Up to 1 msg/day. Msg &amp; data rates may apply. Reply STOP to "
        "cancel, HELP for help. Consent is not a condition of purchase.</label>"
        '<button type="submit">Sign me up</button></form>'
        '<p id="thanks" hidden>Thanks! Check your phone to confirm.</p>',
    ),
    "checkout": (
        "Checkout",
        '<div id="lines"></div><button id="place" onclick="place()">Place order</button>'
        '<p id="done" hidden>Thank you for your order!</p>'
        "<script>smsr('checkout');"
        "document.getElementById('lines').innerHTML=cart().map(function(i){return '<div>'+"
        "i.qty+' x '+i.name+'</div>'}).join('')||'<p>Your cart is empty.</p>';"
        "function place(){var items=cart(),value=items.reduce(function(s,i){return s+i.qty*i.price},0);"
        "smsr('purchase',{order_id:'D'+Date.now(),value:value,currency:'USD'});save([]);"
        "document.getElementById('done').hidden=false}</script>",
    ),
}


def routes(site_key: str | None = None) -> list[BaseRoute]:
    """The demo pages for `site_key`; none when no demo site is configured."""
    if site_key is None:
        return []

    async def page(request: Request) -> Response:
        name = request.path_params.get("page", "")
        if name not in PAGES:
            return HTMLResponse("<h1>Not found</h1>", status_code=404)
        title, body = PAGES[name]
        base = str(request.base_url).rstrip("/")
        html = LAYOUT.format(title=escape(title), body=body, base=base, key=escape(site_key))
        return HTMLResponse(html)

    return [Route("/", page), Route("/{page}", page)]
