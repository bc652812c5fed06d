"""medsleep dashboard: what the nightly consolidation kept, and why.

    streamlit run dashboard/app.py        # or: medsleep dashboard --db URL --port 8501

Nothing but the login form is shown before login; each role sees only its pages.
"""

from __future__ import annotations

import streamlit as st
import ui_auth
import ui_common as ui

# Not "pages/": Streamlit runs files in a pages/ folder directly (skipping this gate and
# listing every page) on a fresh server until some session has called st.navigation.
PAGES = {
    "digest": ("app_pages/digest.py", "Morning digest", ":material/wb_twilight:"),
    "overview": ("app_pages/overview.py", "Overview", ":material/monitoring:"),
    "patient": ("app_pages/patient.py", "Patient", ":material/ecg_heart:"),
    "runs": ("app_pages/runs.py", "Runs", ":material/nightlight:"),
    "quarantine": ("app_pages/quarantine.py", "Quarantine", ":material/block:"),
    "compliance": ("app_pages/compliance.py", "Compliance", ":material/verified_user:"),
    "archive": ("app_pages/archive.py", "Collapsed stretches", ":material/inventory_2:"),
    "holds": ("app_pages/holds.py", "Legal holds", ":material/gavel:"),
}

st.set_page_config(page_title="medsleep", page_icon=":material/bedtime:", layout="wide")
ui.engine()  # an unreachable store stops here with a message, before any page asks for data
user = ui_auth.login_gate()
if user is None:
    # Every page's path leads to the login form, so a deep link is not "page not found".
    stubs = [st.Page(lambda: None, title="Log in", url_path=name) for name in ("login", *PAGES)]
    st.navigation(stubs, position="hidden")
    st.stop()

pages = [
    st.Page(
        PAGES[name][0], title=PAGES[name][1], icon=PAGES[name][2], url_path=name, default=i == 0
    )  # fmt: skip
    for i, name in enumerate(user.pages)
]
with st.sidebar:
    st.caption(f"Logged in as **{user.name}** ({user.role})")
    st.button("Log out", on_click=ui_auth.logout, key="logout")
    st.caption(f"Times in {ui.settings().tz_name}; UTC in tooltips.")
navigation = st.navigation(pages)
if (link := ui_auth.destination(user.pages)) is not None:  # a deep link opened before login
    page, patient = link
    if patient:
        st.session_state["patient"] = patient
    if page != user.pages[0] or patient:
        st.switch_page(PAGES[page][0])
navigation.run()
