"""Drives the inspector page in headless chromium and compares what it
renders with the HTTP API's answers for the same requests.

usage: [HMREC_TEST_CA=CA.pem HMREC_TEST_SPKI=HASH HMREC_API_KEY=KEY] \
           inspector_test.py HTTP_BASE SCREENSHOT.png PROFILE_DIR CUSTOMER RECORDED_ARTICLE

CUSTOMER: one with a long history; RECORDED_ARTICLE: an article the test
recorded (RecordPurchases) for them after the bundle's data. Over HTTPS,
HMREC_TEST_CA signed the server's certificate and HMREC_TEST_SPKI is the
base64 SHA-256 of its public key (what chromium is told to trust); with
HMREC_API_KEY the server wants a key: the page is refused until the key is
typed into it, and keeps it in the tab's session storage only.
"""
import json
import os
import ssl
import sys
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

BASE, SHOT, PROFILE, CUSTOMER, RECORDED = sys.argv[1:6]
CA = os.environ.get("HMREC_TEST_CA")
KEY = os.environ.get("HMREC_API_KEY")
TLS = ssl.create_default_context(cafile=CA) if CA else None


def api(path, body=None):
    req = urllib.request.Request(BASE + path)
    if KEY:
        req.add_header("Authorization", "Bearer " + KEY)
    if body is not None:
        req.data = json.dumps(body).encode()
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=30, context=TLS) as r:
        return json.load(r)


def wait_for(driver, what, cond, timeout=30):
    try:
        return WebDriverWait(driver, timeout).until(lambda d: cond(d))
    except Exception:
        raise AssertionError(f"timed out waiting for {what}; status: "
                             f"{driver.find_element(By.ID, 'status').text!r}")


def rendered(driver, table="recs"):
    rows = driver.find_elements(By.CSS_SELECTOR, "#" + table + " tr")
    return [{
        "id": r.get_attribute("data-article-id"),
        "cells": [c.text for c in r.find_elements(By.TAG_NAME, "td")],
    } for r in rows]


def submit(driver, customer, index_group="", exclude_days=0):
    box = driver.find_element(By.ID, "customer_id")
    box.clear()
    box.send_keys(customer)
    Select(driver.find_element(By.ID, "index_group")).select_by_value(index_group)
    days = driver.find_element(By.ID, "exclude_days")
    days.clear()
    days.send_keys(str(exclude_days))
    driver.find_element(By.ID, "show").click()
    wait_for(driver, "the answer for " + customer,
             lambda d: customer in d.current_url and "recommendations from bundle" in
             d.find_element(By.ID, "status").text)


def expected(customer, index_group="", exclude_days=0):
    req = {"customer_ids": [customer], "k": 12, "explain": True, "filters": {}}
    if index_group:
        req["filters"]["index_group_names"] = [index_group]
    if exclude_days:
        req["filters"]["exclude_purchased_within_days"] = exclude_days
    return api("/v1/recommend", req)["results"][0]


def why(explanation):
    """The page's reasons cell: each source's text, then the rules that moved the article, then
    whether it was placed as new in the catalogue."""
    return "; ".join([r.get("text") or r["source"] for r in explanation.get("reasons", [])] +
                     ["rule " + r for r in explanation.get("rules", [])] +
                     (["new in the catalogue (placed here)"] if explanation.get("new_in_catalogue") else []))


def check_same(driver, customer, **filters):
    want = expected(customer, **filters)
    got = rendered(driver)
    assert [r["id"] for r in got] == want["article_ids"], (customer, filters, [r["id"] for r in got],
                                                            want["article_ids"])
    names = {a["article_id"]: a for a in api("/v1/articles", {"article_ids": want["article_ids"]})["articles"]}
    for row, explanation in zip(got, want.get("explanations", [])):
        a = names[row["id"]]
        assert row["cells"][2] == a["prod_name"] and row["cells"][3] == a["product_type_name"], (row, a)
        assert row["cells"][6] == why(explanation), (row["cells"][6], why(explanation))
    return want, names


opts = Options()
opts.binary_location = "/usr/bin/chromium"
for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1000",
          "--user-data-dir=" + PROFILE, "--no-first-run", "--disable-extensions"):
    opts.add_argument(a)
if CA:  # trust exactly the test server's key
    opts.add_argument("--ignore-certificate-errors-spki-list=" + os.environ["HMREC_TEST_SPKI"])
driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
try:
    driver.get(BASE + "/inspect")
    wait_for(driver, "the page to load", lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready"))
    bundle = api("/v1/bundle")
    if KEY:
        # Without a key the page says so; with it typed in, it loads.
        text = driver.find_element(By.ID, "status").text
        assert "401" in text and "API key" in text, text
        driver.find_element(By.ID, "api_key").send_keys(KEY)
        driver.find_element(By.ID, "use_key").click()
        wait_for(driver, "the bundle with the key",
                 lambda d: bundle["version"] in d.find_element(By.ID, "bundle").text)
        assert driver.execute_script("return sessionStorage.getItem('hmrec_api_key')") == KEY
        assert driver.execute_script("return localStorage.length") == 0, "the key reached local storage"
        assert driver.get_cookies() == [], driver.get_cookies()
        assert driver.find_element(By.ID, "api_key").get_attribute("value") == "", "the key stays in the box"
    assert bundle["version"] in driver.find_element(By.ID, "bundle").text
    groups = [o.get_attribute("value") for o in
              driver.find_elements(By.CSS_SELECTOR, "#index_group option") if o.get_attribute("value")]
    assert groups == api("/v1/filters")["index_group_names"], groups

    # A customer with a long history (and one purchase recorded online).
    customer = CUSTOMER
    submit(driver, customer)
    want, _ = check_same(driver, customer)
    assert not want.get("fallback") and want.get("ranked"), want
    assert driver.find_element(By.ID, "fallback").is_displayed() is False
    assert "ordered by the ranker" in driver.find_element(By.ID, "personal").text
    # The merchandising rules in force (the shell's rules file caps each list
    # at 2 articles of a product type) and the ones that changed this list.
    # (The second run, over HTTPS, has no rules file: the line stays empty.)
    rules = api("/v1/rules")
    if not rules["source"]:
        assert rules["summary"] == "no rules_file" and not driver.find_element(By.ID, "rules_in_force").text, rules
    else:
        assert rules["rules"]["diversity"]["max_per_product_type"] == 2, rules
        assert "Merchandising rules in force" in driver.find_element(By.ID, "rules_in_force").text
        assert rules["summary"] in driver.find_element(By.ID, "rules_in_force").text
    if want.get("rules"):
        assert "merchandising rules that changed it: " + ", ".join(want["rules"]) in \
            driver.find_element(By.ID, "personal").text
    profile = api("/v1/customers/" + customer)
    assert profile["known"] and profile["purchases"], profile
    # The recorded purchase: in the API's profile, applied by Recommend, listed first and marked.
    recorded = profile.get("recorded_purchases", [])
    assert [p["article"]["article_id"] for p in recorded] == [RECORDED], recorded
    assert want.get("events_applied") == 1, want
    rows = driver.find_elements(By.CSS_SELECTOR, "#purchases tr")
    assert [r.get_attribute("data-article-id") for r in rows] == \
        [p["article"]["article_id"] for p in recorded + profile["purchases"]]
    assert rows[0].get_attribute("data-recorded") == "1" and "(recorded)" in rows[0].text, rows[0].text
    assert rows[1].get_attribute("data-recorded") is None
    assert rows[1].find_elements(By.TAG_NAME, "td")[0].text == profile["purchases"][0]["date"]
    assert profile["age"] == -1 or str(profile["age"]) in driver.find_element(By.ID, "profile").text
    # Clicking a recommendation shows the articles similar to it, as
    # /v1/similar answers, with names and reasons.
    first = driver.find_element(By.CSS_SELECTOR, "#recs tr")
    query = first.get_attribute("data-article-id")
    first.click()
    wait_for(driver, "the similar articles of " + query,
             # the status after rendering, not "Loading articles similar to ..." before it
             lambda d: ("articles similar to " + query + " from bundle") in d.find_element(By.ID, "status").text)
    similar = api("/v1/similar", {"article_ids": [query], "k": 12, "explain": True})
    got = rendered(driver, "similar")
    assert [r["id"] for r in got] == similar["article_ids"], ([r["id"] for r in got], similar["article_ids"])
    assert query not in similar["article_ids"] and len(got) == 12, got
    similar_names = {a["article_id"]: a for a in api("/v1/articles", {"article_ids": similar["article_ids"]})["articles"]}
    for row, explanation in zip(got, similar["explanations"]):
        assert row["cells"][2] == similar_names[row["id"]]["prod_name"], row
        assert row["cells"][6] == why(explanation), row
    assert query in driver.find_element(By.ID, "similar_title").text
    driver.save_screenshot(SHOT)

    # The controls are the API's filters.
    group = groups[0]
    submit(driver, customer, index_group=group)
    want, names = check_same(driver, customer, index_group=group)
    assert all(names[i]["index_group_name"] == group for i in want["article_ids"]), "index group filter"
    submit(driver, customer, exclude_days=100000)
    want, _ = check_same(driver, customer, exclude_days=100000)
    bought = {p["article"]["article_id"] for p in recorded + profile["purchases"]}
    assert not bought & set(want["article_ids"]), "exclude purchased filter"

    # A customer the bundle does not know: the fallback, flagged.
    stranger = "0" * 63 + "1"
    submit(driver, stranger)
    want, _ = check_same(driver, stranger)
    assert want["fallback"]
    banner = driver.find_element(By.ID, "fallback")
    assert banner.is_displayed() and "Fallback answered" in banner.text, banner.text

    # "Random customer" picks a known one and shows it.
    driver.find_element(By.ID, "random").click()
    wait_for(driver, "a random customer", lambda d: "customer_id=" in d.current_url and
             stranger not in d.current_url and "recommendations from bundle" in d.find_element(By.ID, "status").text)
    picked = driver.find_element(By.ID, "customer_id").get_attribute("value")
    assert api("/v1/customers/" + picked)["known"], picked
    check_same(driver, picked)

    # A malformed id is refused by the page, with a message.
    box = driver.find_element(By.ID, "customer_id")
    box.clear()
    box.send_keys("not-an-id")
    driver.find_element(By.ID, "show").click()
    wait_for(driver, "the error", lambda d: "64 lowercase hex" in d.find_element(By.ID, "status").text)
    if KEY:
        assert KEY not in driver.current_url, "the key reached the URL"
        driver.find_element(By.ID, "forget_key").click()
        assert driver.execute_script("return sessionStorage.getItem('hmrec_api_key')") is None
    print("inspector" + (" over HTTPS with a key" if KEY else "") + ": the rendered page equals the API for",
          customer, "(and filters, and the similar articles of a clicked one), a stranger and a random one")
finally:
    driver.quit()
