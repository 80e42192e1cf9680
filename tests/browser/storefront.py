"""The storefront in a real browser (Debian's Chromium through chromedriver).

Run by tests/e2e/storefront.rs against a fresh `shop serve --demo`; it is
not meant to be run by hand except while debugging. Arguments come from the
environment: SHOP_URL, SHOP_ADMIN_TOKEN, SHOP_ADMIN_EMAIL and SHOP_ADMIN_PASSWORD,
SHOP_CUSTOMER_EMAIL and
SHOP_CUSTOMER_PASSWORD (a customer whose API cart already holds an item),
AXE_JS (axe-core's axe.min.js), SCREENSHOTS (a directory), SHOP_DB (the
server's SQLite file, which it locks to take the database down). To have the
server stopped or started again (same port, same database) it prints
`control: stop` or `control: start` and reads `stopped` or `started` from
stdin. Its last line is one JSON line of findings for the Rust side to check
against the API and the CLI; it exits non-zero at the first thing that is wrong.
"""

import json
import os
import sqlite3
import sys
import time
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.support.ui import WebDriverWait

URL = os.environ["SHOP_URL"]
SHOTS = os.environ["SCREENSHOTS"]
AXE = open(os.environ["AXE_JS"], encoding="utf-8").read()
PASSWORD = "violet-tundra-42-harbor"
PHONE, DESKTOP = (390, 1100), (1280, 1000)
WAIT = 15
findings = {"axe": {}, "pages": {}}


def fail(message):
    raise AssertionError(message)


def browser(javascript=True):
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    if not javascript:
        options.add_experimental_option(
            "prefs", {"profile.managed_default_content_settings.javascript": 2}
        )
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    driver.set_window_size(*DESKTOP)
    driver.set_page_load_timeout(30)
    return driver


def wait_for(driver, what, condition):
    # A page that is still navigating replaces the element a condition just
    # found; that is "not yet", so ask again rather than fail.
    patient = WebDriverWait(
        driver, WAIT, ignored_exceptions=(NoSuchElementException, StaleElementReferenceException)
    )
    try:
        return patient.until(lambda d: condition(d))
    except Exception as err:
        fail(f"waited {WAIT}s for {what} on {driver.current_url}: {err}\n{text(driver)[:2000]}")


def text(driver):
    return driver.find_element(By.TAG_NAME, "body").text


def go(driver, path):
    driver.get(URL + path)


def shoot(driver, name):
    """The page at a phone's width and a desktop's, then back to desktop."""
    for label, size in (("phone", PHONE), ("desktop", DESKTOP)):
        driver.set_window_size(*size)
        time.sleep(0.1)
        driver.save_screenshot(os.path.join(SHOTS, f"{name}-{label}.png"))
    driver.set_window_size(*DESKTOP)


def weigh(driver, name):
    """Bytes of the page and its assets (not the data a live page polls) as the browser decoded them."""
    sizes = driver.execute_script(
        """
        const nav = performance.getEntriesByType('navigation')[0];
        const assets = performance.getEntriesByType('resource')
            .filter(r => !['fetch', 'xmlhttprequest', 'other'].includes(r.initiatorType))
            .map(r => r.decodedBodySize);
        return {html: nav.decodedBodySize, assets: assets.reduce((a, b) => a + b, 0),
                ttfb_ms: nav.responseStart - nav.requestStart};
        """
    )
    sizes["total"] = sizes["html"] + sizes["assets"]
    findings["pages"][name] = sizes
    if sizes["total"] >= 100 * 1024:
        fail(f"{name} weighs {sizes['total']} bytes with its assets (limit 100 KB)")


def axe(driver, name):
    """axe-core's serious and critical violations on the page: there must be none."""
    driver.execute_script(AXE)
    violations = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document).then(r => done(r.violations.map(v => ({id: v.id, impact: v.impact,"
        " help: v.help, nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)}))));"
    )
    bad = [v for v in violations if v["impact"] in ("serious", "critical")]
    findings["axe"][name] = len(bad)
    if bad:
        fail(f"axe-core on {name} ({driver.current_url}): {json.dumps(bad, indent=1)}")


def check_page(driver, name, audit=True):
    """Size, accessibility (axe needs JavaScript, so not in the browser without it) and screenshots."""
    weigh(driver, name)
    if audit:
        axe(driver, name)
    shoot(driver, name)


def submit(driver, form_selector):
    driver.find_element(By.CSS_SELECTOR, form_selector + " [type=submit]").click()


def fill(driver, field_id, value):
    fill_element(driver.find_element(By.ID, field_id), value)


def fill_element(field, value):
    field.clear()
    field.send_keys(value)


def cart_lines(driver):
    go(driver, "/cart")
    return lines_shown(driver)


def lines_shown(driver):
    """SKU -> quantity of the cart or order lines on the page."""
    rows = driver.find_elements(By.CSS_SELECTOR, "table.lines tbody tr")
    lines = {}
    for row in rows:
        name = row.find_element(By.CSS_SELECTOR, "th a").get_attribute("href").rsplit("/", 1)[1]
        quantity = row.find_elements(By.CSS_SELECTOR, "input[name=quantity][type=number]")
        lines[name] = int(quantity[0].get_attribute("value")) if quantity else int(row.find_elements(By.TAG_NAME, "td")[1].text)
    return lines


def pay(driver, card):
    fill(driver, "card_number", card)
    fill(driver, "exp_month", "12")
    fill(driver, "exp_year", "2031")
    fill(driver, "cvc", "123")
    driver.find_element(By.ID, "pay").click()


def api(method, path, body=None, token=None):
    request = urllib.request.Request(URL + path, method=method)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", "Bearer " + token)
    data = json.dumps(body).encode() if body is not None else None
    with urllib.request.urlopen(request, data, timeout=10) as response:
        raw = response.read()
        return json.loads(raw) if raw else None


def buy_with_javascript(driver):
    """Search with a typo, two items, a declined card, then a good one."""
    go(driver, "/")
    wait_for(driver, "the home page", lambda d: d.find_elements(By.CSS_SELECTOR, ".categories li"))
    check_page(driver, "home")

    # Suggestions as you type, chosen with the keyboard.
    box = driver.find_element(By.ID, "q")
    box.send_keys("cha")
    wait_for(driver, "suggestions", lambda d: d.find_elements(By.CSS_SELECTOR, "#suggestions li"))
    findings["suggestions"] = [li.text for li in driver.find_elements(By.CSS_SELECTOR, "#suggestions li")]
    box.send_keys(Keys.ARROW_DOWN)
    if box.get_attribute("aria-activedescendant") != "suggestion-0":
        fail("the arrow key did not select the first suggestion")
    box.send_keys(Keys.ESCAPE)

    # A typo still finds chairs.
    box.clear()
    box.send_keys("chiar" + Keys.ENTER)
    wait_for(driver, "search results", lambda d: "/search" in d.current_url and d.find_elements(By.CSS_SELECTOR, ".grid .card"))
    names = [e.text for e in driver.find_elements(By.CSS_SELECTOR, ".grid .card .name")]
    if not any("chair" in n.lower() for n in names):
        fail(f"searching `chiar` found no chair: {names[:5]}")
    if not driver.find_elements(By.CSS_SELECTOR, "fieldset input[name=category]"):
        fail("the search page shows no category facets")
    check_page(driver, "search")

    first = next(e for e in driver.find_elements(By.CSS_SELECTOR, ".grid .card a") if "chair" in e.text.lower())
    first.click()
    wait_for(driver, "a product page", lambda d: "/p/" in d.current_url)
    if not driver.find_elements(By.CSS_SELECTOR, ".price.big"):
        fail("the product page shows no price")
    check_page(driver, "product")
    first_sku = driver.current_url.rsplit("/", 1)[1]
    submit(driver, "form.add")
    wait_for(driver, "the cart", lambda d: d.current_url.endswith("/cart"))

    # A second item: a recommendation from the first one's page.
    go(driver, "/p/" + first_sku)
    recommended = driver.find_elements(By.CSS_SELECTOR, "section .grid .card a")
    if not recommended:
        fail("the product page has no recommendations")
    recommended[0].click()
    wait_for(driver, "the second product", lambda d: "/p/" in d.current_url and not d.current_url.endswith(first_sku))
    second_sku = driver.current_url.rsplit("/", 1)[1]
    fill(driver, "quantity", "2")
    submit(driver, "form.add")
    wait_for(driver, "the cart", lambda d: d.current_url.endswith("/cart"))
    lines = cart_lines(driver)
    if lines != {first_sku: 1, second_sku: 2}:
        fail(f"the cart holds {lines}, expected {first_sku} x1 and {second_sku} x2")
    if "Cart (3)" not in text(driver):
        fail("the header does not count 3 items")
    check_page(driver, "cart")

    # Checkout asks who you are; a new account keeps the cart.
    driver.find_element(By.LINK_TEXT, "Check out").click()
    wait_for(driver, "the sign-in page", lambda d: "/account/signin" in d.current_url)
    check_page(driver, "signin")
    email = f"web-{int(time.time() * 1000)}@example.com"
    fill(driver, "register-name", "Web Shopper")
    fill(driver, "register-email", email)
    fill(driver, "register-password", PASSWORD)
    submit(driver, "form[action='/account/register']")
    wait_for(driver, "the checkout page", lambda d: d.current_url.endswith("/checkout"))
    check_page(driver, "checkout")

    # Where it goes, then the methods the quote lists for that address.
    fill(driver, "ship-name", "Web Shopper")
    fill(driver, "ship-line1", "Heidestraße 17")
    fill(driver, "ship-postal_code", "51147")
    fill(driver, "ship-city", "Köln")
    fill(driver, "ship-country", "de")
    driver.find_element(By.ID, "use-address").send_keys(Keys.ENTER)
    methods = wait_for(driver, "the delivery methods",
                       lambda d: d.find_elements(By.CSS_SELECTOR, "input[name=method]"))
    # Chosen with the keyboard alone: Space picks a method, Enter presses the button.
    methods[0].send_keys(Keys.SPACE)
    driver.find_element(By.ID, "use-method").send_keys(Keys.ENTER)
    wait_for(driver, "shipping in the figures",
             lambda d: d.find_elements(By.ID, "shipping") and d.find_element(By.ID, "shipping").text != "$0.00")

    # A code the shop does not have is refused with the server's reason; the sample code applies.
    fill(driver, "code", "NOPE10")
    driver.find_element(By.ID, "apply-code").send_keys(Keys.ENTER)
    refusal = wait_for(driver, "the code's refusal", lambda d: d.find_elements(By.ID, "code-error"))[0].text
    if "NOPE10" not in refusal:
        fail(f"an unknown code is refused with: {refusal}")
    findings["code_refusal"] = refusal
    check_page(driver, "checkout-code-refused")
    fill(driver, "code", "welcome10")
    driver.find_element(By.ID, "apply-code").send_keys(Keys.ENTER)
    wait_for(driver, "the discount in the figures", lambda d: d.find_elements(By.ID, "discount"))
    figures = {f: driver.find_element(By.ID, f).text for f in ("subtotal", "discount", "shipping", "tax", "total")}
    quoted = int(driver.find_element(By.ID, "total").get_attribute("data-cents"))
    if figures["tax"] in ("$0.00", ""):
        fail(f"no tax on an order to Germany: {figures}")
    check_page(driver, "checkout-priced")

    pay(driver, "4000000000000002")
    error = wait_for(driver, "the decline", lambda d: d.find_elements(By.ID, "payment-error"))[0].text
    if "declined" not in error.lower():
        fail(f"a declined card says: {error}")
    findings["decline_message"] = error
    check_page(driver, "checkout-declined")
    after = cart_lines(driver)
    if after != lines:
        fail(f"after a decline the cart holds {after}, expected {lines}")

    go(driver, "/checkout")
    pay(driver, "4242424242424242")
    wait_for(driver, "the confirmation", lambda d: d.find_elements(By.ID, "thanks"))
    check_page(driver, "confirmation")
    # The order page shows the figures the checkout quoted.
    charged = int(driver.find_element(By.ID, "total").get_attribute("data-cents"))
    if charged != quoted:
        fail(f"the checkout quoted {quoted} but the order shows {charged}")
    shown = {f: driver.find_element(By.ID, f).text for f in ("subtotal", "discount", "shipping", "tax", "total")}
    if shown != figures:
        fail(f"the checkout showed {figures} but the order shows {shown}")
    findings.update(quoted_cents=quoted, order_page_cents=charged, figures=figures)
    status = driver.find_element(By.ID, "order-status").text
    if status != "Paid":
        fail(f"the confirmed order is `{status}`")
    order_id = driver.current_url.split("/orders/")[1].split("?")[0]
    number = driver.find_element(By.TAG_NAME, "h1").text.replace("Order ", "")
    if "Cart (0)" not in text(driver):
        fail("the cart was not emptied by the order")

    go(driver, "/account")
    if number not in text(driver):
        fail(f"the account page does not list {number}")
    check_page(driver, "account")
    findings.update(order_id=order_id, order_number=number, email=email,
                    bought={first_sku: 1, second_sku: 2})


def buy_without_javascript(driver, foreign_order):
    """The core path with JavaScript off, by a customer whose API cart holds an item: it merges."""
    go(driver, "/")
    driver.find_element(By.CSS_SELECTOR, ".categories a").click()
    wait_for(driver, "a category page", lambda d: "/c/" in d.current_url)
    category_url = driver.current_url
    # Filters and sorting are a plain GET form.
    driver.find_element(By.CSS_SELECTOR, "#sort option[value='-price']").click()
    driver.find_element(By.ID, "in_stock").click()
    submit(driver, "form.filters")
    wait_for(driver, "the sorted category", lambda d: "sort=-price" in d.current_url)
    prices = [e.text for e in driver.find_elements(By.CSS_SELECTOR, ".grid .card .price")]
    values = [float(p.replace("$", "").replace(",", "")) for p in prices]
    if values != sorted(values, reverse=True) or not values:
        fail(f"sorted by price, high to low: {prices}")
    check_page(driver, "category-no-js", audit=False)
    findings["category_url"] = driver.current_url

    # Search is a plain GET form as well: no suggestions, the same results.
    fill(driver, "q", "kettle")
    submit(driver, "form.search")
    wait_for(driver, "search results without JavaScript",
             lambda d: "/search?q=kettle" in d.current_url and d.find_elements(By.CSS_SELECTOR, ".grid .card"))
    found = driver.find_element(By.CSS_SELECTOR, ".grid .card a")
    if "kettle" not in found.text.lower():
        fail(f"searching `kettle` without JavaScript first found {found.text}")
    found.click()
    wait_for(driver, "a product", lambda d: "/p/" in d.current_url)
    sku = driver.current_url.rsplit("/", 1)[1]
    submit(driver, "form.add")
    wait_for(driver, "the cart", lambda d: d.current_url.endswith("/cart"))

    go(driver, "/account/signin")
    fill(driver, "signin-email", os.environ["SHOP_CUSTOMER_EMAIL"])
    fill(driver, "signin-password", os.environ["SHOP_CUSTOMER_PASSWORD"])
    submit(driver, "form[action='/account/signin']")
    wait_for(driver, "signed in", lambda d: "Sign out" in text(d))
    merged = cart_lines(driver)
    if sku not in merged or len(merged) < 2:
        fail(f"signing in did not merge the anonymous cart ({sku}) into the account's: {merged}")
    findings["merged_cart"] = merged

    # Quantities change in the cart with a plain form.
    row = next(r for r in driver.find_elements(By.CSS_SELECTOR, "table.lines tbody tr")
               if r.find_element(By.CSS_SELECTOR, "th a").get_attribute("href").endswith("/" + sku))
    fill_element(row.find_element(By.CSS_SELECTOR, "input[name=quantity][type=number]"), "2")
    row.find_element(By.CSS_SELECTOR, "form.qty [type=submit]").click()
    wait_for(driver, "the quantity to change", lambda d: lines_shown(d).get(sku) == 2)

    # Her saved address is offered first; the delivery is a plain radio form too.
    go(driver, "/checkout")
    saved = driver.find_elements(By.CSS_SELECTOR, "input[name=saved]")
    if not saved or not saved[0].is_selected():
        fail("the checkout does not offer the saved default address first")
    submit(driver, "form[action='/checkout/address']")
    wait_for(driver, "the delivery methods without JavaScript",
             lambda d: d.find_elements(By.CSS_SELECTOR, "input[name=method]"))
    driver.find_elements(By.CSS_SELECTOR, "input[name=method]")[-1].click()
    submit(driver, "form[action='/checkout/shipping']")
    wait_for(driver, "the chosen delivery",
             lambda d: any(m.is_selected() for m in d.find_elements(By.CSS_SELECTOR, "input[name=method]")))
    check_page(driver, "checkout-no-js", audit=False)
    pay(driver, "4242424242424242")
    wait_for(driver, "the confirmation", lambda d: d.find_elements(By.ID, "thanks"))
    findings["no_js_order"] = driver.current_url.split("/orders/")[1].split("?")[0]

    # Someone else's order is not found, not forbidden: its existence is not revealed.
    go(driver, "/orders/" + foreign_order)
    if "Not found" not in driver.find_element(By.TAG_NAME, "h1").text:
        fail("another customer's order page did not answer Not found")


def category_page(driver):
    go(driver, findings["category_url"].replace(URL, ""))
    wait_for(driver, "the category page", lambda d: d.find_elements(By.CSS_SELECTOR, ".grid .card"))
    check_page(driver, "category")


def status_page(driver):
    go(driver, "/status")
    rows = driver.find_elements(By.CSS_SELECTOR, "#services [data-service]")
    services = [r.get_attribute("data-service") for r in rows]
    if len(services) != 9 or services[-1] != "webhooks":
        fail(f"the status page lists {services}")
    wait_for(driver, "live figures", lambda d: all(
        c.text not in ("", "–") for c in d.find_elements(By.CSS_SELECTOR, "#services [data-rate]")))
    if any(word in text(driver).lower() for word in ("revenue", "orders by status")):
        fail("the public status page shows business figures")
    check_page(driver, "status")
    # A provider that refuses every call opens the SMS breaker: notifications degrade, live.
    api("POST", "/api/notifications", {"channel": "sms", "to": "+15551234567", "template": "welcome",
                                       "vars": {"name": "Al"}}, os.environ["SHOP_ADMIN_TOKEN"])
    row = driver.find_element(By.CSS_SELECTOR, "[data-service=notifications]")
    wait_for(driver, "notifications to turn degraded", lambda d: row.get_attribute("data-status") == "degraded")
    colour = row.find_element(By.CSS_SELECTOR, "[data-health]").value_of_css_property("color")
    findings["degraded_colour"] = colour
    shoot(driver, "status-degraded")

    # Another process holds the database's write lock (a backup, an operator's
    # sqlite3 session left in a transaction): no service can write, so every
    # one reports its database down, and the page turns each row red.
    holder = sqlite3.connect(os.environ["SHOP_DB"], isolation_level=None, timeout=10)
    try:
        holder.execute("BEGIN IMMEDIATE")
        wait_for(driver, "every service to turn down", lambda d: all(
            r.get_attribute("data-status") == "down"
            for r in d.find_elements(By.CSS_SELECTOR, "#services [data-service]")))
        badge = row.find_element(By.CSS_SELECTOR, "[data-health]")
        background = badge.value_of_css_property("background-color")
        if background not in ("rgb(180, 35, 24)", "rgba(180, 35, 24, 1)"):
            fail(f"a down service's badge is {background}, not the red of --bad")
        findings["down"] = {"badge": badge.text, "background": background,
                            "overall": driver.find_element(By.ID, "overall").text}
        shoot(driver, "status-down")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    wait_for(driver, "the services to recover", lambda d: d.find_element(
        By.CSS_SELECTOR, "[data-service=users]").get_attribute("data-status") == "ok")


def ops_page(driver):
    go(driver, "/status/ops")
    if "for staff" not in text(driver):
        fail("/status/ops opened for a customer")
    driver.find_element(By.CSS_SELECTOR, "form[action='/account/signout'] button").click()
    # The click does not wait for the sign-out's answer. A sign-in page opened
    # before that answer clears the cookie sees a signed-in customer and
    # sends them on to `next`, with no form to fill.
    wait_for(driver, "the sign-out to finish", lambda d: not d.find_elements(
        By.CSS_SELECTOR, "form[action='/account/signout']"))
    go(driver, "/account/signin?next=/status/ops")
    wait_for(driver, "the sign-in form", lambda d: d.find_elements(By.ID, "signin-email"))
    fill(driver, "signin-email", os.environ["SHOP_ADMIN_EMAIL"])
    fill(driver, "signin-password", os.environ["SHOP_ADMIN_PASSWORD"])
    submit(driver, "form[action='/account/signin']")
    wait_for(driver, "the ops page", lambda d: d.find_elements(By.ID, "ops-stock"))
    if not driver.find_elements(By.CSS_SELECTOR, "#ops-stock tr"):
        fail("the ops page shows no stock")
    # A stock change arrives through the event stream.
    sku = driver.find_element(By.CSS_SELECTOR, "#ops-stock th").text
    api("POST", f"/api/inventory/{sku}/adjustments", {"delta": 1, "reason": "browser test"},
        os.environ["SHOP_ADMIN_TOKEN"])
    wait_for(driver, "a live event", lambda d: d.find_elements(By.CSS_SELECTOR, "#ops-events li"))
    findings["ops_event"] = driver.find_element(By.CSS_SELECTOR, "#ops-events li").text
    shoot(driver, "status-ops")


def control(command):
    """Asks the Rust side to stop or start the server (same port, same database) and waits until it has."""
    print(f"control: {command}", flush=True)
    answer = sys.stdin.readline().strip()
    if answer != {"stop": "stopped", "start": "started"}[command]:
        fail(f"asked the harness to {command} the server; it answered `{answer}`")


def restart(driver):
    """The status page stays open while the server stops and starts again on the same port."""
    go(driver, "/status")
    wait_for(driver, "the status page to be live", lambda d: d.find_element(By.ID, "live").get_attribute("data-state") == "live")
    driver.execute_script("window.sameStatusPage = true;")
    control("stop")
    wait_for(driver, "the page to notice the server went away", lambda d: d.find_element(By.ID, "live").get_attribute("data-state") == "reconnecting")
    findings["while_stopped"] = driver.find_element(By.ID, "live").text
    # What the page knew is no longer known: no stale health or figures.
    statuses = {r.get_attribute("data-status") for r in driver.find_elements(By.CSS_SELECTOR, "#services [data-service]")}
    rates = {c.text for c in driver.find_elements(By.CSS_SELECTOR, "#services [data-rate]")}
    if statuses != {"unknown"} or rates != {"–"}:
        fail(f"while the server was away the page still showed {statuses} and rates {rates}")
    shoot(driver, "status-reconnecting")
    control("start")
    wait_for(driver, "the page to be live again", lambda d: d.find_element(By.ID, "live").get_attribute("data-state") == "live")
    if not driver.execute_script("return window.sameStatusPage === true;"):
        fail("the status page was reloaded rather than reconnecting")
    # Live figures again: a rate needs two samples from the new server.
    wait_for(driver, "live figures after the restart", lambda d: all(
        c.text not in ("", "–") for c in d.find_elements(By.CSS_SELECTOR, "#services [data-rate]")))
    users = driver.find_element(By.CSS_SELECTOR, "[data-service=users]").get_attribute("data-status")
    if users != "ok":
        fail(f"after the restart the users service shows `{users}`")
    findings["after_restart"] = driver.find_element(By.ID, "live").text
    shoot(driver, "status-restarted")


def main():
    os.makedirs(SHOTS, exist_ok=True)
    with_js = browser(javascript=True)
    without_js = browser(javascript=False)
    try:
        buy_with_javascript(with_js)
        buy_without_javascript(without_js, findings["order_id"])
        category_page(with_js)
        status_page(with_js)
        ops_page(with_js)
        restart(with_js)
    finally:
        with_js.quit()
        without_js.quit()
    print(json.dumps(findings))


if __name__ == "__main__":
    try:
        main()
    except AssertionError as err:
        print(f"storefront browser test failed: {err}", file=sys.stderr)
        sys.exit(1)
