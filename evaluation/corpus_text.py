"""Text templates for the generated corpus: support issues, the master services agreement template,
and company wiki pages. Placeholders are filled from one seeded ``random.Random``.

The support issues recur across customers on purpose (many customers have slow optimisation or SSO
trouble), so a question can only be answered by the customer it names, not by the topic alone.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Issue:
    """A support topic: ticket subject/description/resolution, and the phrase questions use."""

    key: str
    subject: str
    description: str
    resolution: str
    symptom: str          # as a question or CRM note refers to it
    billing: bool = False


ISSUES: tuple[Issue, ...] = (
    Issue("slow-optimisation", "Route optimisation slow for the {city} depot",
          "Optimising routes for the {city} depot ({n} stops) takes over {m} minutes since the last release.",
          "Enabled the clustered solver for depots above 1,000 stops; runtime dropped to {k} seconds.",
          "slow route optimisation"),
    Issue("sso-audience", "SSO login fails for new users",
          "New users get 'assertion audience mismatch' when signing in with {idp}.",
          "The customer's {idp} app had the old entity ID. Sent the updated SAML metadata.",
          "single sign-on login failures"),
    Issue("api-429", "API returns HTTP 429 during the morning dispatch",
          "Dispatch integration receives HTTP 429 Too Many Requests between 06:00 and 07:00; limit is {n} req/s.",
          "Raised the rate limit to {k} requests per second and added retry with backoff guidance.",
          "API rate limit errors"),
    Issue("geocoding", "Postcodes geocoded to the wrong city",
          "Addresses with postcode {code} are placed in the wrong city, so drivers are sent {m} km off route.",
          "Switched the region to the national address register; re-geocoded {n} addresses.",
          "wrong geocoding of postcodes"),
    Issue("duplicate-ids", "Data migration fails with duplicate shipment IDs",
          "The CSV import stops at row {n} with 'duplicate shipment id'. Legacy exports reuse IDs per depot.",
          "Import now namespaces shipment IDs by depot code; migration of {n} rows completed.",
          "duplicate shipment IDs in the data migration"),
    Issue("eta-timezone", "Driver ETAs off by one hour",
          "ETAs shown to customers in {city} are one hour late after the daylight-saving change.",
          "Depot time zone was stored as a fixed offset; changed to the IANA zone and recomputed ETAs.",
          "driver ETAs that are an hour off"),
    Issue("android-crash", "Driver app crashes on Android when scanning",
          "The driver app crashes when scanning barcodes on Android {n} devices at the {city} depot.",
          "Fixed in driver app release 5.{m}.1; the camera permission race is gone.",
          "driver app crashes on Android"),
    Issue("webhook-timeout", "Webhooks time out for delivery events",
          "Delivery-completed webhooks time out after {m} seconds; the customer's endpoint sees gaps.",
          "Webhooks are now retried for 24 hours with exponential backoff; {n} missed events replayed.",
          "webhook timeouts on delivery events"),
    Issue("export-empty", "Monthly empty-miles report is empty",
          "The empty-miles report for {city} shows no rows for last month although {n} routes ran.",
          "The report filtered on the wrong depot group; fixed and re-sent the report.",
          "empty empty-miles reports"),
    Issue("invoice-overdue", "Invoices overdue",
          "Invoices for {months} are unpaid, {n} EUR in total; the customer's accounts payable changed ERP.",
          "Agreed a payment plan: two instalments by the end of next month.",
          "overdue invoices", billing=True),
    Issue("duplicate-charge", "Duplicate charge on the latest invoice",
          "The customer was charged twice for {months}: {n} EUR billed twice on one invoice.",
          "Issued credit note CN-{code} for the duplicate amount.",
          "duplicate invoice charges", billing=True),
)

IDPS = ("Okta", "Azure AD", "Google Workspace", "OneLogin", "Ping Identity")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")

# --- the master services agreement (one template, differing only in names and a few values) ------

BOILERPLATE = {
    "Definitions": "In this Agreement, Service means the Route Planner software-as-a-service offering, "
                   "Documentation means the user guides published by Northwind, and Users means the "
                   "individuals the Customer authorises to use the Service under the Customer's account.",
    "Scope of services": "Northwind provides the Service in accordance with the Documentation, hosts it in "
                         "the region the Customer selects, and supplies second-line support during business "
                         "hours. Implementation services are ordered separately on an order form.",
    "Service levels": "Northwind commits to 99.9 percent monthly availability. Service credits are 5 percent "
                      "of the monthly fee below 99.9 percent, 10 percent below 99.5 percent and 25 percent "
                      "below 99.0 percent. Credits are the sole remedy for availability shortfalls.",
    "Data protection": "Each party complies with applicable data protection law. Northwind processes personal "
                       "data only on the Customer's documented instructions, under the data processing "
                       "agreement attached as Annex 2, and notifies personal data breaches without delay.",
    "Confidentiality": "Each party keeps the other party's confidential information secret, uses it only to "
                       "perform this Agreement, and returns or destroys it when the Agreement ends, except "
                       "where law requires it to be retained.",
    "Intellectual property": "Northwind owns the Service and the Documentation. The Customer owns its data. "
                             "Neither party acquires rights in the other's intellectual property except the "
                             "licences expressly granted in this Agreement.",
}


def contract_sections(v: dict) -> list[tuple[str, str]]:
    """The MSA's sections in order; ``v`` holds the distinguishing values."""
    return [
        ("Parties", f"This Master Services Agreement (the Agreement) is made on {v['effective']} between "
                    f"Northwind Systems B.V., Rotterdam, and {v['legal']}, {v['city']} (the Customer)."),
        ("Definitions", BOILERPLATE["Definitions"]),
        ("Scope of services", BOILERPLATE["Scope of services"]),
        ("Fees and payment", f"Annual fees are {v['fees']} EUR for {v['seats']} seats, invoiced quarterly in "
                             f"advance. Invoices are payable within {v['payment_days']} days."),
        ("Service levels", BOILERPLATE["Service levels"]),
        ("Data protection", BOILERPLATE["Data protection"]),
        ("Confidentiality", BOILERPLATE["Confidentiality"]),
        ("Term and renewal", f"The initial term runs from {v['effective']} to {v['end']}. The Agreement renews "
                             f"automatically on {v['renewal']} for successive periods of twelve months unless "
                             f"either party gives written notice of non-renewal at least {v['notice']} days "
                             "before that date."),
        ("Limitation of liability", f"Each party's total liability under this Agreement is capped at "
                                    f"{v['cap']}. The cap does not apply to breaches of confidentiality."),
        ("Intellectual property", BOILERPLATE["Intellectual property"]),
        ("Governing law", f"This Agreement is governed by the laws of {v['law']}."),
    ]


# --- wiki pages that are not about one customer (values vary per seed) ---------------------------

def policy_pages(v: dict) -> list[dict]:
    """General pages: team, file slug, title, sections, and the question each one answers."""
    return [
        {"team": "engineering", "slug": "incident-runbook", "title": "Incident Response Runbook",
         "sections": [("Severity levels", "SEV1 means the routing service is down for all customers; SEV2 a "
                       "major feature is degraded; SEV3 a minor issue with a workaround."),
                      ("First response", f"The on-call engineer acknowledges a SEV1 page within {v['ack']} "
                       f"minutes and posts status updates every {v['update']} minutes.")],
         "question": "How fast must the on-call engineer acknowledge a SEV1 page?"},
        {"team": "sales", "slug": "enterprise-refund-policy", "title": "Enterprise Refund Policy",
         "sections": [("Refund window", f"Enterprise customers may ask for a pro-rata refund of prepaid fees "
                       f"within {v['refund']} days of a documented SLA breach."),
                      ("Approval", "Refunds above 10,000 EUR need the CFO's approval.")],
         "question": "Within how many days can an enterprise customer ask for a refund after an SLA breach?"},
        {"team": "finance", "slug": "discount-approval-matrix", "title": "Discount Approval Matrix",
         "sections": [("Thresholds", f"Discounts up to {v['disc_lo']} percent: the account executive. Up to "
                       f"{v['disc_hi']} percent: the sales director. Above that: the CFO and the CEO.")],
         "question": f"Who approves a {v['disc_hi'] + 2} percent renewal discount?"},
        {"team": "hr", "slug": "parental-leave", "title": "Parental Leave",
         "sections": [("Entitlement", f"Employees get {v['leave']} weeks of paid parental leave. "
                       f"Reference {v['hr_canary']}.")],
         "question": "How many weeks of paid parental leave do employees get?", "canary": "hr_canary"},
        {"team": "public", "slug": "product-overview", "title": "Route Planner Product Overview",
         "sections": [("Plans", f"The Team plan costs {v['team_price']} EUR per seat per month; Enterprise is "
                       "priced per contract."),
                      ("Hosting", "Route Planner is hosted in the Frankfurt and Virginia regions.")],
         "question": "How much does the Team plan cost per seat?"},
        {"team": "drafts", "slug": "unreleased-pricing", "title": "Unreleased Pricing (draft)",
         "sections": [("Draft", f"Proposed Team plan price {v['team_price'] + 6} EUR. {v['draft_canary']}.")],
         "question": "", "canary": "draft_canary"},
    ]
