#!/usr/bin/env python3
"""Interop suite: the official Tencent IoT Explorer Python SDK, run unmodified as a device
against a `tplgen emulate` process.

    python3 harness.py suite --tplgen BIN [--sdk DIR] [--template FILE] [--json OUT]

starts the emulator on a random loopback address (the SDK always dials port 1883 of its
"domain"), then runs every call group in a child process of its own (the SDK keeps its MQTT
client, hub and logger as process-wide singletons, so one process is one device). Each check
reads its result from the wire (what the SDK's callbacks received) and from the emulator's
JSON API, not only from the SDK's return codes. The last lines are a per-group summary and
"N passed, M failed".

    python3 harness.py group NAME --config FILE

runs one call group (used by the suite). Only transport and logging are patched at run time
(see interop/README.md); protocol behaviour is the SDK's own.
"""

import argparse
import base64
import hashlib
import json
import os
import random
import re
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.request

# Products and devices the suite registers in the emulator.
LIGHT = "LIGHT00001"          # data-template product (template, mqtt, ota, hub features)
GATEWAY = "GATEWAY001"        # gateway product
SUB = "SUBDEV0001"            # sub-device product (same template)
DYNREG = "DYNREG0001"         # dynamic-registration product
DYNREG_SECRET = "InteropProductSecret0001"  # >= 16 bytes: the AES key is its first 16

# Hub-layer features the SDK has but the emulator does not serve yet (reported, not run).
NOT_LANDED = {}


# --------------------------------------------------------------------------------------------
# Results

class Checks:
    """Collects check results of one group and prints them as JSON lines."""

    def __init__(self, group):
        self.group = group
        self.failed = 0

    def check(self, name, ok, detail=""):
        rec = {"group": self.group, "check": name, "ok": bool(ok), "detail": str(detail)[:600]}
        print("RESULT " + json.dumps(rec), flush=True)
        if not ok:
            self.failed += 1
        return bool(ok)


def wait_for(pred, timeout=8.0, step=0.05):
    """Polls pred until it returns a truthy value or timeout; returns the last value."""
    deadline = time.time() + timeout
    v = pred()
    while not v and time.time() < deadline:
        time.sleep(step)
        v = pred()
    return v


# --------------------------------------------------------------------------------------------
# The emulator's JSON API

class API:
    def __init__(self, base):
        self.base = base.rstrip("/")

    def call(self, method, path, body=None, raw=None, timeout=15):
        data = raw
        headers = {}
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                text = resp.read().decode()
                return resp.status, (json.loads(text) if text.strip() else None)
        except urllib.error.HTTPError as e:
            text = e.read().decode(errors="replace")
            try:
                return e.code, json.loads(text)
            except ValueError:
                return e.code, text

    def device(self, pid, dn):
        status, doc = self.call("GET", "/api/devices/%s/%s" % (pid, dn))
        return doc if status == 200 else None


def find(doc, key):
    """Returns the first value under key anywhere in a JSON document (depth first)."""
    if isinstance(doc, dict):
        if key in doc:
            return doc[key]
        for v in doc.values():
            r = find(v, key)
            if r is not None:
                return r
    elif isinstance(doc, list):
        for v in doc:
            r = find(v, key)
            if r is not None:
                return r
    return None


def reported(api, pid, dn, prop):
    doc = api.device(pid, dn)
    rep = find(doc, "reported") if doc else None
    if isinstance(rep, dict) and prop in rep:
        v = rep[prop]
        return v.get("value", v) if isinstance(v, dict) else v
    return None


def online(api, pid, dn):
    doc = api.device(pid, dn)
    return bool(doc) and find(doc, "online") is True


# --------------------------------------------------------------------------------------------
# Run-time patches: transport and logging only (documented in README.md)

def patch_transport(ca_file):
    """The SDK builds its TLS contexts with ssl.create_default_context(ssl.Purpose.CLIENT_AUTH,
    cadata=<Tencent CA>): a SERVER-side context, which Python >= 3.10 refuses for client
    sockets, and a CA the emulator does not use. Replace only that context factory with a
    client context trusting the emulator's CA. Nothing the SDK sends changes."""
    from hub.utils.codec import Codec

    def create_content(self, cadata=None):
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca_file)
        return ctx
    Codec.Ssl.create_content = create_content


def quiet_sdk_logging(hub):
    """Logging only: the SDK's logger stays off unless INTEROP_DEBUG is set."""
    if os.environ.get("INTEROP_DEBUG"):
        import logging
        hub.logInit(hub.LoggerLevel.DEBUG, os.path.join(tempfile.gettempdir(), "interop-sdk.log"), 1 << 20, 1, enable=True)


# --------------------------------------------------------------------------------------------
# Device files in the SDK's format

def device_file(path, pid, dn, secret, product_secret="YOUR_PRODUCT_SECRET", subdevs=None):
    info = {
        "auth_mode": "KEY",
        "productId": pid,
        "productSecret": product_secret,
        "deviceName": dn,
        "key_deviceinfo": {"deviceSecret": secret},
        "cert_deviceinfo": {"devCaFile": "", "devCertFile": "", "devPrivateKeyFile": ""},
        "subDev": {"subdev_num": len(subdevs or []), "subdev_list": [
            {"sub_productId": p, "sub_devName": d} for p, d in (subdevs or [])]},
        "region": "ap-guangzhou",
    }
    with open(path, "w", encoding="utf-8") as f:
        json.dump(info, f)
    return path


class Wire:
    """Everything the SDK's callbacks received, in order (the downlink as the device saw it)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.items = []

    def add(self, kind, topic, payload):
        with self.lock:
            self.items.append((kind, topic, payload))

    def first(self, pred):
        with self.lock:
            for it in self.items:
                if pred(*it):
                    return it
        return None

    def wait(self, pred, timeout=8.0):
        return wait_for(lambda: self.first(pred), timeout)

    def count(self, kind):
        with self.lock:
            return sum(1 for k, _, _ in self.items if k == kind)

    def wait_subacks(self, before, n, timeout=8.0):
        """Waits until n more SUBACKs than `before` arrived (subscriptions are asynchronous)."""
        return wait_for(lambda: self.count("suback") >= before + n, timeout)


def mqtt_callbacks(wire):
    def on_connect(flags, rc, userdata):
        wire.add("connect", None, rc)

    def on_disconnect(rc, userdata):
        wire.add("disconnect", None, rc)

    def on_message(topic, qos, payload, userdata):
        wire.add("message", topic, payload)

    def on_publish(mid, userdata):
        wire.add("puback", None, mid)

    def on_subscribe(qos, mid, userdata):
        wire.add("suback", None, (qos, mid))

    def on_unsubscribe(mid, userdata):
        wire.add("unsuback", None, mid)
    return on_connect, on_disconnect, on_message, on_publish, on_subscribe, on_unsubscribe


def new_hub(cfg, pid, dn, secret, tls=False):
    from hub.hub import QcloudHub
    path = device_file(os.path.join(cfg["workdir"], "%s_%s.json" % (pid, dn)), pid, dn, secret)
    hub = QcloudHub(device_file=path, tls=tls, domain=cfg["domain"]).hub
    quiet_sdk_logging(hub)
    wire = Wire()
    hub.registerMqttCallback(*mqtt_callbacks(wire))
    return hub, wire


def connect(c, hub, wire, api, pid, dn):
    hub.connect()
    ok = wait_for(hub.isMqttConnected, 10)
    # on_connect reaches the user from the SDK's event thread, after isMqttConnected turns true.
    c.check("connect", ok and wire.wait(lambda k, t, p: k == "connect" and p == 0) is not None
            and wait_for(lambda: online(api, pid, dn)),
            "SDK connected=%s, emulator online=%s" % (ok, online(api, pid, dn)))
    return ok


# --------------------------------------------------------------------------------------------
# Groups

def group_mqtt(c, cfg, api):
    pid, dn = LIGHT, "mqttdev"
    hub, wire = new_hub(cfg, pid, dn, cfg["secrets"]["%s/%s" % (pid, dn)])
    if not connect(c, hub, wire, api, pid, dn):
        return
    topic = "%s/%s/data" % (pid, dn)
    got = []
    hub.registerUserCallback(topic, lambda t, q, p, u: got.append(p))
    rc, mid = hub.subscribe(topic, 1)
    c.check("subscribe", rc == 0 and wire.wait(lambda k, t, p: k == "suback" and p[1] == mid and p[0] in (0, 1)),
            "rc=%s mid=%s subacks=%s" % (rc, mid, [p for k, t, p in wire.items if k == "suback"]))
    msg = {"interop": "hello", "n": 1}
    rc, mid = hub.publish(topic, msg, 1)
    c.check("publish", rc == 0 and wire.wait(lambda k, t, p: k == "puback" and p == mid)
            and wait_for(lambda: got) and got[0] == msg,
            "rc=%s, echoed back by the broker: %s" % (rc, got[:1]))
    rc, mid = hub.unsubscribe(topic)
    c.check("unsubscribe", rc == 0 and wire.wait(lambda k, t, p: k == "unsuback" and p == mid), "rc=%s" % rc)
    hub.disconnect()
    c.check("disconnect", wait_for(lambda: not online(api, pid, dn)),
            "emulator online after disconnect: %s" % online(api, pid, dn))


def group_template(c, cfg, api):
    from explorer.explorer import QcloudExplorer
    pid, dn = LIGHT, "tpldev"
    # Pending control, sent while the device is offline: get_status must return it.
    status, doc = api.call("POST", "/api/devices/%s/%s/control" % (pid, dn), {"params": {"color": 1}})
    c.check("control while offline is kept pending", status in (200, 202), "status %s %s" % (status, doc))

    path = device_file(os.path.join(cfg["workdir"], "tpl.json"), pid, dn, cfg["secrets"]["%s/%s" % (pid, dn)])
    te = QcloudExplorer(device_file=path, tls=False, domain=cfg["domain"])
    wire = Wire()
    te.registerMqttCallback(*mqtt_callbacks(wire))
    te.connect()
    if not c.check("connect", wait_for(te.isMqttConnected, 10) and wait_for(lambda: online(api, pid, dn)), ""):
        return
    prop, action, event = [], [], []
    state = {}

    def on_property(topic, qos, payload, userdata):
        prop.append(payload)
        if payload.get("method") == "control":
            state["control"] = payload
            reply = te.ReplyPara()
            reply.code = 0
            reply.timeout_ms = 5000
            reply.status_msg = "ok"
            te.templateControlReply(pid, dn, reply)

    def on_action(topic, qos, payload, userdata):
        action.append(payload)
        reply = te.ReplyPara()
        reply.code = 0
        reply.status_msg = "done"
        te.templateActionReply(pid, dn, payload["clientToken"], {"err_code": 0}, reply)

    def on_event(topic, qos, payload, userdata):
        event.append(payload)

    def on_service(topic, qos, payload, userdata):
        pass

    n0 = wire.count("suback")
    rc, mid = te.templateInit(pid, dn, on_property, on_action, on_event, on_service)
    c.check("template init (4 subscriptions acknowledged)", rc == 0 and wire.wait_subacks(n0, 4), "rc=%s" % rc)
    rc = te.templateSetup(pid, dn, cfg["template"])
    c.check("template setup (parse the data template)", rc == 0 and len(te.getPropertyList(pid, dn)) > 0, "rc=%s" % rc)

    # get_status: the SDK sends {"method":"get_status","clientToken":...} without "type".
    te.templateGetStatus(pid, dn)
    rep = wait_for(lambda: next((p for p in prop if p.get("method") == "get_status_reply"), None))
    ctl = (rep or {}).get("data", {}).get("control") if rep else None
    c.check("get_status reply", rep is not None and rep.get("code") == 0, "reply %s" % rep)
    c.check("get_status returns pending control (untyped request)", isinstance(ctl, dict) and ctl.get("color") == 1,
            "data.control = %s (reply %s)" % (ctl, rep))
    rc, mid = te.clearControl(pid, dn)
    clear = wait_for(lambda: next((p for p in prop if p.get("method") == "clear_control_reply"), None))
    doc = api.device(pid, dn)
    pend = find(doc, "pending_control") if doc else None
    if pend is None and doc:
        pend = find(doc, "control")
    c.check("clear_control", rc == 0 and clear is not None and clear.get("code") == 0 and not pend,
            "reply %s, pending control in API %s" % (clear, pend))

    params = te.templateJsonConstructReportArray(pid, dn, {"power_switch": 1, "brightness": 42, "color": 2, "name": "desk"})
    rc, mid = te.templateReport(pid, dn, params)
    rr = wait_for(lambda: next((p for p in prop if p.get("method") == "report_reply"), None))
    c.check("report", rc == 0 and rr is not None and rr.get("code") == 0
            and wait_for(lambda: reported(api, pid, dn, "brightness") == 42),
            "report_reply %s, API brightness %s" % (rr, reported(api, pid, dn, "brightness")))

    rc, mid = te.templateReportSysInfo(pid, dn, {"module_hardinfo": "interop", "fw_ver": "1.0.0"})
    ri = wait_for(lambda: next((p for p in prop if p.get("method") == "report_info_reply"), None))
    c.check("report_info", rc == 0 and ri is not None and ri.get("code") == 0, "reply %s" % ri)

    status, doc = api.call("POST", "/api/devices/%s/%s/control" % (pid, dn), {"params": {"brightness": 77}})
    got = wait_for(lambda: state.get("control"))
    c.check("control (cloud -> device, device replies)", status in (200, 202) and got is not None
            and got.get("params", {}).get("brightness") == 77,
            "API %s %s, wire %s" % (status, doc, got))

    result = {}

    def invoke():
        result["r"] = api.call("POST", "/api/devices/%s/%s/actions/light_on" % (pid, dn), {"params": {"is_on": 1}})
    th = threading.Thread(target=invoke)
    th.start()
    th.join(15)
    st, doc = result.get("r", (None, None))
    a = action[0] if action else None
    c.check("action (invoke, reply with output)", st == 200 and a is not None and a.get("method") == "action"
            and a.get("actionId") == "light_on" and find(doc, "err_code") == 0,
            "wire %s, API %s %s" % (a, st, doc))

    ev = {"events": [{"eventId": "status_report", "type": "info", "timestamp": int(time.time() * 1000),
                      "params": {"status": 1, "message": "interop"}}]}
    rc, mid = te.templateEventPost(pid, dn, ev)
    # The SDK always sends an "events" array; the cloud (and the emulator) answer a one-element
    # array with events_reply (docs/PROTOCOL.md §2.4.6), so both reply names are accepted.
    replies = lambda: [p for p in event if p.get("method") in ("event_reply", "events_reply")]
    er = wait_for(lambda: replies()[0] if replies() else None)
    doc = api.device(pid, dn)
    c.check("event_post", rc == 0 and er is not None and er.get("code") == 0 and "status_report" in json.dumps(doc),
            "event_reply %s, wire %s" % (er, event))
    ev2 = {"events": [
        {"eventId": "low_voltage", "type": "alert", "timestamp": int(time.time() * 1000), "params": {"voltage": 3.1}},
        {"eventId": "hardware_fault", "type": "fault", "timestamp": int(time.time() * 1000), "params": {"name": "fan", "error_code": 7}}]}
    rc, mid = te.templateEventPost(pid, dn, ev2)
    er2 = wait_for(lambda: replies()[1] if len(replies()) > 1 else None)
    doc = api.device(pid, dn)
    c.check("events_post (two events)", rc == 0 and er2 is not None and er2.get("code") == 0
            and er2.get("method") == "events_reply" and er2.get("clientToken") != er.get("clientToken")
            and "hardware_fault" in json.dumps(doc), "events_reply %s" % er2)
    te.disconnect()


def group_gateway(c, cfg, api):
    from explorer.explorer import QcloudExplorer
    gw_dn, sub_dn = "gw", "sub1"
    path = device_file(os.path.join(cfg["workdir"], "gw.json"), GATEWAY, gw_dn,
                       cfg["secrets"]["%s/%s" % (GATEWAY, gw_dn)], subdevs=[(SUB, sub_dn)])
    te = QcloudExplorer(device_file=path, tls=False, domain=cfg["domain"])
    wire = Wire()
    te.registerMqttCallback(*mqtt_callbacks(wire))
    te.connect()
    if not c.check("connect gateway", wait_for(te.isMqttConnected, 10), ""):
        return
    n0 = wire.count("suback")
    rc, mid = te.gatewayInit()
    c.check("gateway init (subscribe)", rc == 0 and wire.wait_subacks(n0, 1), "rc=%s" % rc)
    rc, mid = te.gatewaySubdevBind(SUB, sub_dn, cfg["secrets"]["%s/%s" % (SUB, sub_dn)])
    status, subs = api.call("GET", "/api/gateways/%s/%s/subdevices" % (GATEWAY, gw_dn))
    c.check("bind", rc == 0 and sub_dn in json.dumps(subs), "rc=%s, API %s %s" % (rc, status, subs))
    rc, mid = te.gatewaySubdevOnline(SUB, sub_dn)
    c.check("online", rc == 0 and wait_for(lambda: online(api, SUB, sub_dn)),
            "rc=%s, API online %s" % (rc, online(api, SUB, sub_dn)))

    prop = []

    def on_sub_property(topic, qos, payload, userdata):
        prop.append(payload)
        if payload.get("method") == "control":
            reply = te.ReplyPara()
            reply.code = 0
            reply.status_msg = "ok"
            te.templateControlReply(SUB, sub_dn, reply)
    n0 = wire.count("suback")
    rc, mid = te.templateInit(SUB, sub_dn, on_sub_property, lambda *a: None, lambda *a: None, lambda *a: None)
    te.templateSetup(SUB, sub_dn, cfg["template"])
    wire.wait_subacks(n0, 4)
    params = te.templateJsonConstructReportArray(SUB, sub_dn, {"brightness": 33})
    rc, mid = te.templateReport(SUB, sub_dn, params)
    rr = wait_for(lambda: next((p for p in prop if p.get("method") == "report_reply"), None))
    c.check("sub-device report through the gateway", rc == 0 and rr is not None and rr.get("code") == 0
            and wait_for(lambda: reported(api, SUB, sub_dn, "brightness") == 33),
            "report_reply %s, API brightness %s" % (rr, reported(api, SUB, sub_dn, "brightness")))
    status, doc = api.call("POST", "/api/devices/%s/%s/control" % (SUB, sub_dn), {"params": {"brightness": 55}})
    ctl = wait_for(lambda: next((p for p in prop if p.get("method") == "control"), None))
    c.check("sub-device control through the gateway", status in (200, 202) and ctl is not None
            and ctl.get("params", {}).get("brightness") == 55, "API %s, wire %s" % (status, ctl))

    rc, mid = te.gatewaySubdevOffline(SUB, sub_dn)
    c.check("offline", rc == 0 and wait_for(lambda: not online(api, SUB, sub_dn)),
            "rc=%s, API online %s" % (rc, online(api, SUB, sub_dn)))
    rc, mid = te.gatewaySubdevUnbind(SUB, sub_dn)
    status, subs = api.call("GET", "/api/gateways/%s/%s/subdevices" % (GATEWAY, gw_dn))
    c.check("unbind", rc == 0 and sub_dn not in json.dumps(subs), "rc=%s, API %s %s" % (rc, status, subs))
    te.disconnect()


def ota_job(api, pid, dn):
    status, doc = api.call("GET", "/api/devices/%s/%s/ota" % (pid, dn))
    return doc if status == 200 else {}


def group_ota(c, cfg, api):
    """Phase 1 (this process): report version, get the push, download the first half, stop.
    Phase 2 (group ota_resume, a fresh process as after a reboot): resume from the offset."""
    from hub.hub import QcloudHub
    pid, dn = LIGHT, "otadev"
    hub, wire = new_hub(cfg, pid, dn, cfg["secrets"]["%s/%s" % (pid, dn)])
    if not connect(c, hub, wire, api, pid, dn):
        return
    rsp = []
    rc, mid = hub.otaInit(pid, dn, lambda t, q, p, u: rsp.append(p))
    c.check("ota init (subscribe $ota/update)", rc == 0, "rc=%s" % rc)
    rc, mid = hub.otaReportVersion(pid, dn, "1.0.0")
    r = wait_for(lambda: rsp[0] if rsp else None)
    c.check("report_version", rc == 0 and r is not None and r.get("result_code") == 0
            and wait_for(lambda: find(ota_job(api, pid, dn), "reported_version") in ("1.0.0", None)),
            "report_version_rsp %s" % r)
    image = bytes((i * 131 + (i >> 7)) & 0xFF for i in range(200_000))
    status, info = api.call("POST", "/api/firmware?product=%s&version=2.0.0" % pid, raw=image)
    c.check("upload firmware (API)", status == 201 and info.get("md5") == hashlib.md5(image).hexdigest(), "%s %s" % (status, info))
    status, job = api.call("POST", "/api/devices/%s/%s/ota" % (pid, dn), {"version": "2.0.0", "plain_http": True})
    fetching = wait_for(lambda: hub.otaIsFetching(pid, dn), 10)
    url, host = sdk_ota_target(hub, pid, dn)
    c.check("push (update_firmware reaches the SDK)", status == 202 and fetching,
            "API %s, SDK fetching=%s, url %s" % (status, fetching, url))
    if not fetching:
        return
    c.check("firmware URL host as the SDK parses it", url.startswith("http://") and re.fullmatch(r"127\.0\.0\.1:\d+", host or ""),
            "url %s -> Host header %r" % (url, host))
    size, _ = hub.otaIoctlNumber(pid, dn, hub_ota_cmd("IOT_OTAG_FILE_SIZE"))
    md5, _ = hub.otaIoctlString(pid, dn, hub_ota_cmd("IOT_OTAG_MD5SUM"), 33)
    c.check("update_firmware fields (size, md5)", size == len(image) and md5 == hashlib.md5(image).hexdigest(),
            "size %s md5 %s" % (size, md5))
    rc = hub.otaDownloadStart(pid, dn, 0, size)
    got = bytearray()
    while len(got) < len(image) // 2:
        buf, n = hub.otaFetchYield(pid, dn, 4096)
        if n <= 0:
            break
        got += buf
    c.check("download (first half)", rc == 0 and got == image[:len(got)] and len(got) >= len(image) // 2,
            "rc=%s, %d bytes, equal to the image prefix: %s" % (rc, len(got), got == image[:len(got)]))
    with open(os.path.join(cfg["workdir"], "ota.part"), "wb") as f:
        f.write(got)
    with open(os.path.join(cfg["workdir"], "ota.image"), "wb") as f:
        f.write(image)
    hub.disconnect()


def sdk_ota_target(hub, pid, dn):
    """What the SDK parsed out of update_firmware (read, never changed): the URL and the host it
    sends as the Host header (everything between the scheme and the last "/")."""
    ota = hub._QcloudHubProvider__ota_map.get(pid + dn)
    m = ota._Ota__ota_manager if ota else None
    return (m.purl, m.host) if m else (None, None)


def hub_ota_cmd(name):
    from hub.services.ota.ota import Ota
    return getattr(Ota.OtaCmdType, name)


def group_ota_resume(c, cfg, api):
    pid, dn = LIGHT, "otadev"
    part_path = os.path.join(cfg["workdir"], "ota.part")
    if not os.path.exists(part_path):
        c.check("resume precondition (phase 1 left a partial download)", False, "no partial file")
        return
    part = open(part_path, "rb").read()
    image = open(os.path.join(cfg["workdir"], "ota.image"), "rb").read()
    hub, wire = new_hub(cfg, pid, dn, cfg["secrets"]["%s/%s" % (pid, dn)])
    if not connect(c, hub, wire, api, pid, dn):
        return
    hub.otaInit(pid, dn, lambda t, q, p, u: None)
    # Still on 1.0.0: the platform pushes update_firmware again (freshly signed URL).
    hub.otaReportVersion(pid, dn, "1.0.0")
    if not c.check("re-push after reconnect", wait_for(lambda: hub.otaIsFetching(pid, dn), 10), ""):
        return
    size, _ = hub.otaIoctlNumber(pid, dn, hub_ota_cmd("IOT_OTAG_FILE_SIZE"))
    hub.otaResetMd5(pid, dn)
    hub.otaMd5Update(pid, dn, part)
    rc = hub.otaDownloadStart(pid, dn, len(part), size)
    rest = bytearray()
    while not hub.otaIsFetchFinished(pid, dn):
        buf, n = hub.otaFetchYield(pid, dn, 8192)
        if n <= 0:
            break
        rest += buf
    c.check("resume from offset %d" % len(part), rc == 0 and bytes(part) + bytes(rest) == image,
            "rc=%s, %d + %d bytes of %d, whole image equal: %s" % (rc, len(part), len(rest), len(image),
                                                                   bytes(part) + bytes(rest) == image))
    ok, msg = hub.otaIoctlNumber(pid, dn, hub_ota_cmd("IOT_OTAG_CHECK_FIRMWARE"))
    c.check("MD5 check", ok == 0, "%s %s" % (ok, msg))
    rc, mid = hub.otaReportUpgradeSuccess(pid, dn, None)
    c.check("report success", rc == 0 and wait_for(lambda: find(ota_job(api, pid, dn), "state") == "done"),
            "job %s" % json.dumps(ota_job(api, pid, dn))[:300])
    hist = find(ota_job(api, pid, dn), "history") or []
    c.check("progress on the wire (downloading reports seen by the platform)",
            any(h.get("state") == "downloading" for h in hist if isinstance(h, dict)), "history %s" % hist[:6])
    hub.disconnect()


def group_ota_https(c, cfg, api):
    """A whole update over HTTPS: the SDK's own TLS context cannot work on Python >= 3.10, so
    this group depends on the transport patch (patch_transport) and shows it is enough."""
    pid, dn = LIGHT, "otatls"
    hub, wire = new_hub(cfg, pid, dn, cfg["secrets"]["%s/%s" % (pid, dn)])
    if not connect(c, hub, wire, api, pid, dn):
        return
    hub.otaInit(pid, dn, lambda t, q, p, u: None)
    hub.otaReportVersion(pid, dn, "1.0.0")
    image = os.urandom(50_000)
    status, info = api.call("POST", "/api/firmware?product=%s&version=3.0.0" % pid, raw=image)
    status, job = api.call("POST", "/api/devices/%s/%s/ota" % (pid, dn), {"version": "3.0.0"})
    if not c.check("push with an https URL", status == 202 and wait_for(lambda: hub.otaIsFetching(pid, dn), 10),
                   "API %s %s" % (status, job)):
        return
    url, host = sdk_ota_target(hub, pid, dn)
    url = url or ""
    size, _ = hub.otaIoctlNumber(pid, dn, hub_ota_cmd("IOT_OTAG_FILE_SIZE"))
    rc = hub.otaDownloadStart(pid, dn, 0, size)
    got = bytearray()
    while not hub.otaIsFetchFinished(pid, dn):
        buf, n = hub.otaFetchYield(pid, dn, 8192)
        if n <= 0:
            break
        got += buf
    ok, _ = hub.otaIoctlNumber(pid, dn, hub_ota_cmd("IOT_OTAG_CHECK_FIRMWARE"))
    c.check("download over https + MD5", url.startswith("https://") and rc == 0 and bytes(got) == image and ok == 0,
            "url %s, rc=%s, %d bytes, md5 check %s" % (url[:60], rc, len(got), ok))
    hub.otaReportUpgradeSuccess(pid, dn, None)
    c.check("report success", wait_for(lambda: find(ota_job(api, pid, dn), "state") == "done"), "")
    hub.disconnect()


def group_dynreg(c, cfg, api):
    from hub.hub import QcloudHub, QcloudHubProvider
    url = cfg["http"] + "/device/register"
    # A wrong product secret is refused (a separate provider: no MQTT client is created for a
    # device without a secret, so the process-wide singletons stay unbound).
    bad = device_file(os.path.join(cfg["workdir"], "dynreg_bad.json"), DYNREG, "baddev", "YOUR_DEVICE_SECRET",
                      product_secret="WrongProductSecret000000")
    try:
        rc, msg = QcloudHubProvider(bad, tls=False, domain=cfg["domain"]).dynregDevice(10, url)
    except Exception as e:  # the SDK raises on a non-2xx answer (urllib.error.HTTPError)
        rc, msg = -1, "%s: %s" % (type(e).__name__, e)
    c.check("wrong product secret refused", rc != 0 and online(api, DYNREG, "baddev") is False, "rc=%s %s" % (rc, msg))

    dn = "newdev%d" % random.randrange(1000, 9999)
    path = device_file(os.path.join(cfg["workdir"], "dynreg.json"), DYNREG, dn, "YOUR_DEVICE_SECRET",
                       product_secret=DYNREG_SECRET)
    hub = QcloudHub(device_file=path, tls=False, domain=cfg["domain"]).hub
    wire = Wire()
    hub.registerMqttCallback(*mqtt_callbacks(wire))
    rc, psk = hub.dynregDevice(10, url)
    saved = json.load(open(path))["key_deviceinfo"]["deviceSecret"]
    c.check("register (signed host without port)", rc == 0 and len(base64.b64decode(psk)) > 0 and saved == psk,
            "rc=%s, secret written to the device file: %s" % (rc, saved == psk))
    hub.connect()
    c.check("connect with the issued secret", wait_for(hub.isMqttConnected, 10) and wait_for(lambda: online(api, DYNREG, dn)),
            "emulator online %s" % online(api, DYNREG, dn))
    if hub.isMqttConnected():
        hub.disconnect()


def group_ntp(c, cfg, api):
    pid, dn = LIGHT, "hubdev"
    hub, wire = new_hub(cfg, pid, dn, cfg["secrets"]["%s/%s" % (pid, dn)])
    if not connect(c, hub, wire, api, pid, dn):
        return
    before = time.time() * 1000
    ts = hub.getNtpAccurateTime()
    after = time.time() * 1000
    c.check("getNtpAccurateTime", ts > 0 and before - 5000 <= ts <= after + 5000,
            "timestamp %s, local clock %d..%d ms" % (ts, before, after))
    hub.disconnect()


def group_rrpc(c, cfg, api):
    pid, dn = LIGHT, "hubdev"
    hub, wire = new_hub(cfg, pid, dn, cfg["secrets"]["%s/%s" % (pid, dn)])
    if not connect(c, hub, wire, api, pid, dn):
        return
    got = []

    def on_rrpc(topic, qos, payload, userdata):
        got.append(payload)
        hub.rrpcReply(pid, dn, {"answer": payload.get("question", 0) * 2}, 0)
    n0 = wire.count("suback")
    rc, mid = hub.rrpcInit(pid, dn, on_rrpc)
    c.check("rrpc init (subscribe $rrpc/rxd/+)", rc == 0 and wire.wait_subacks(n0, 1), "rc=%s" % rc)
    status, doc = api.call("POST", "/api/devices/%s/%s/rrpc?timeout=5s" % (pid, dn), {"payload": json.dumps({"question": 21})})
    reply = json.loads(doc.get("payload", "null")) if isinstance(doc, dict) and doc.get("payload") else None
    c.check("rrpc request -> reply", status == 200 and got and got[0].get("question") == 21
            and isinstance(reply, dict) and reply.get("answer") == 42,
            "wire %s, API %s %s" % (got[:1], status, doc))
    hub.disconnect()


def group_broadcast(c, cfg, api):
    pid, dn = LIGHT, "hubdev"
    hub, wire = new_hub(cfg, pid, dn, cfg["secrets"]["%s/%s" % (pid, dn)])
    if not connect(c, hub, wire, api, pid, dn):
        return
    got = []
    n0 = wire.count("suback")
    rc, mid = hub.broadcastInit(pid, dn, lambda t, q, p, u: got.append(p))
    c.check("broadcast init (subscribe $broadcast/rxd)", rc == 0 and wire.wait_subacks(n0, 1), "rc=%s" % rc)
    status, doc = api.call("POST", "/api/products/%s/broadcast" % pid, {"payload": json.dumps({"notice": "interop"})})
    c.check("broadcast delivered", status == 200 and dn in json.dumps(doc)
            and wait_for(lambda: got) and got[0] == {"notice": "interop"}, "API %s %s, wire %s" % (status, doc, got[:1]))
    hub.disconnect()


def group_http_publish(c, cfg, api):
    pid, dn = LIGHT, "hubdev"
    hub, wire = new_hub(cfg, pid, dn, cfg["secrets"]["%s/%s" % (pid, dn)])
    if not connect(c, hub, wire, api, pid, dn):
        return
    topic = "%s/%s/data" % (pid, dn)
    got = []
    hub.registerUserCallback(topic, lambda t, q, p, u: got.append(p))
    hub.subscribe(topic, 0)
    wire.wait(lambda k, t, p: k == "suback")
    try:
        rc, resp = hub.httpDevice(topicName=topic, payload="12345", qos=0, timeout=10,
                                  httpDomain=cfg["http"] + "/device/publish")
    except Exception as e:
        rc, resp = -1, "%s: %s" % (type(e).__name__, e)
    c.check("http publish (signed with the device secret)", rc == 0 and wait_for(lambda: got) and got[0] == 12345,
            "rc=%s resp=%s, delivered over MQTT: %s" % (rc, resp, got[:1]))
    hub.disconnect()


def group_resources(c, cfg, api):
    """Resource upload through $resource (create_upload_task, PUT, report_upload_progress)."""
    pid, dn = LIGHT, "resdev"
    hub, wire = new_hub(cfg, pid, dn, cfg["secrets"]["%s/%s" % (pid, dn)])
    if not connect(c, hub, wire, api, pid, dn):
        return
    got = []
    rc, mid = hub.resourceInit(pid, dn, lambda t, q, p, u: got.append(p))
    c.check("resource init (subscribe $resource/down/service, QoS 1)", rc == 0, "rc=%s" % rc)
    content = "interop resource %s\n" % ("x" * 3000)  # the SDK reads the file as text
    path = os.path.join(cfg["workdir"], "interopres.txt")
    with open(path, "w") as f:
        f.write(content)
    rc, mid = hub.resourceCreateUploadTask(pid, dn, path)
    rsp = wait_for(lambda: next((p for p in got if p.get("type") == "create_upload_task_rsp"), None))
    url = (rsp or {}).get("url", "")
    c.check("create_upload_task", rc == 0 and rsp is not None and rsp.get("result_code") == 0 and url,
            "rsp %s" % rsp)
    if not url:
        return
    try:
        rc, _ = hub.resourceUploadfile(url)
    except Exception as e:
        rc = "%s: %s" % (type(e).__name__, e)
    res = wait_for(lambda: next((p for p in got if p.get("type") == "upload_result"), None))
    status, doc = api.call("GET", "/api/devices/%s/%s/resources" % (pid, dn))
    up = next((u for u in (doc or {}).get("uploads", []) if u.get("name") == "interopres"), None)
    body = None
    if up:
        req = urllib.request.Request(cfg["http"] + "/api/uploads/" + up["token"])
        with urllib.request.urlopen(req, timeout=10) as r:
            body = r.read().decode()
    # The SDK's own return code is -1 even on success: it compares the HTTP reason phrase with
    # "ok" (lower case); servers send "OK". So the check reads the wire and the API instead.
    c.check("upload (PUT to the presigned URL)", res is not None and res.get("result_code") == 0 and body == content,
            "SDK rc %s (see README), upload_result %s, stored %s bytes equal: %s" % (rc, res, len(body or ""), body == content))
    rc, mid = hub.resourceReportUploadProgress(pid, dn)
    rc2, mid2 = hub.resourceFinished()
    acks = wait_for(lambda: [p for p in got if p.get("type") == "report_upload_progress_rsp"][1:] or None)
    c.check("report_upload_progress (uploading, done)", rc == 0 and rc2 == 0 and acks is not None,
            "rsps %s" % [p for p in got if p.get("type") == "report_upload_progress_rsp"])
    hub.disconnect()


def group_websocket(c, cfg, api):
    """MQTT over WebSocket (useWebsocket=True: paho's websockets transport, port 80, path /mqtt)."""
    from hub.hub import QcloudHub
    pid, dn = LIGHT, "wsdev"
    path = device_file(os.path.join(cfg["workdir"], "ws.json"), pid, dn, cfg["secrets"]["%s/%s" % (pid, dn)])
    hub = QcloudHub(device_file=path, tls=False, domain=cfg["domain"], useWebsocket=True).hub
    wire = Wire()
    hub.registerMqttCallback(*mqtt_callbacks(wire))
    if not connect(c, hub, wire, api, pid, dn):
        return
    topic = "%s/%s/data" % (pid, dn)
    got = []
    hub.registerUserCallback(topic, lambda t, q, p, u: got.append(p))
    n0 = wire.count("suback")
    hub.subscribe(topic, 1)
    wire.wait_subacks(n0, 1)
    rc, mid = hub.publish(topic, {"over": "websocket"}, 1)
    c.check("publish and receive over WebSocket", rc == 0 and wait_for(lambda: got) and got[0] == {"over": "websocket"},
            "rc=%s, echoed %s" % (rc, got[:1]))
    hub.disconnect()
    c.check("disconnect", wait_for(lambda: not online(api, pid, dn)), "")


GROUP_FUNCS = {
    "mqtt": group_mqtt, "template": group_template, "gateway": group_gateway, "ota": group_ota,
    "ota_resume": group_ota_resume, "ota_https": group_ota_https, "dynreg": group_dynreg, "ntp": group_ntp, "rrpc": group_rrpc,
    "broadcast": group_broadcast, "http_publish": group_http_publish, "resources": group_resources,
    "websocket": group_websocket,
}
# Report name of each process-level group.
REPORT_AS = {"ota_resume": "ota", "ota_https": "ota"}


def run_group(name, config_path):
    with open(config_path) as f:
        cfg = json.load(f)
    c = Checks(REPORT_AS.get(name, name))
    patch_transport(cfg["ca_file"])
    api = API(cfg["http"])
    try:
        GROUP_FUNCS[name](c, cfg, api)
    except Exception as e:
        c.check("no exception", False, "%s: %s\n%s" % (type(e).__name__, e, traceback.format_exc()[-1500:]))
    sys.stdout.flush()
    os._exit(1 if c.failed else 0)  # the SDK's non-daemon threads must not keep us alive


# --------------------------------------------------------------------------------------------
# Suite: start the emulator, run the groups, summarise

def start_emulator(tplgen, template, workdir):
    for _ in range(20):
        ip = "127.%d.%d.%d" % (random.randrange(1, 250), random.randrange(0, 256), random.randrange(1, 250))
        args = [tplgen, "emulate", "--mqtt", ip + ":1883", "--tls", ip + ":0", "--http", "127.0.0.1:0",
                "--https", "127.0.0.1:0", "--log-level", "warn",
                "--ca-file", os.path.join(workdir, "ca.pem"),
                "--template", "%s=%s" % (LIGHT, template), "--template", "%s=%s" % (SUB, template),
                "--device", LIGHT + "/mqttdev", "--device", LIGHT + "/tpldev", "--device", LIGHT + "/otadev",
                "--device", LIGHT + "/hubdev", "--device", LIGHT + "/otatls",
                "--device", LIGHT + "/resdev", "--device", LIGHT + "/wsdev", "--ws", ip + ":80", "--device", GATEWAY + "/gw", "--device", SUB + "/sub1",
                "--dynreg", "%s=%s" % (DYNREG, DYNREG_SECRET)]
        log = open(os.path.join(workdir, "emulator.log"), "w")
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=log, text=True)
        out = []
        for line in proc.stdout:
            out.append(line)
            if line.startswith("serving"):
                break
        if proc.poll() is None and any(l.startswith("serving") for l in out):
            threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
            return proc, ip, "".join(out)
        proc.wait()
        log.close()
        err = open(os.path.join(workdir, "emulator.log")).read()
        if "address already in use" not in err:
            raise RuntimeError("tplgen emulate failed:\n" + "".join(out) + err)
    raise RuntimeError("no free loopback address for port 1883 after 20 tries")


def parse_emulator(out):
    http = re.search(r"^\s*http:\s+(\S+)", out, re.M).group(1)
    secrets, cur = {}, None
    for line in out.splitlines():
        m = re.match(r"^device (\S+)$", line)
        if m:
            cur = m.group(1)
        m = re.match(r"^\s+device_secret:\s+(\S+)$", line)
        if m and cur:
            secrets[cur] = m.group(1)
    return http, secrets


def crypto_shim(workdir):
    """Environment, not the SDK: the SDK imports pycryptodome as "Crypto"; Debian's
    python3-pycryptodome installs the same library as "Cryptodome". When only the latter is
    importable, a "Crypto" symlink to it is put on PYTHONPATH."""
    try:
        import Crypto.Cipher.AES  # noqa: F401
        return None
    except ImportError:
        pass
    try:
        import Cryptodome
    except ImportError:
        return None
    d = os.path.join(workdir, "crypto-shim")
    os.makedirs(d, exist_ok=True)
    os.symlink(os.path.dirname(Cryptodome.__file__), os.path.join(d, "Crypto"))
    return d


def suite(args):
    workdir = tempfile.mkdtemp(prefix="tplgen-interop-")
    proc, ip, out = start_emulator(args.tplgen, args.template, workdir)
    results = []
    try:
        http, secrets = parse_emulator(out)
        cfg = {"domain": ip, "http": http, "secrets": secrets, "workdir": workdir, "template": args.template,
               "ca_file": os.path.join(workdir, "ca.pem")}
        cfg_path = os.path.join(workdir, "config.json")
        with open(cfg_path, "w") as f:
            json.dump(cfg, f)
        env = dict(os.environ)
        paths = [args.sdk] if args.sdk else []
        shim = crypto_shim(workdir)
        if shim:
            paths.append(shim)
        # Transport: urllib calls the SDK makes with context=None (tls=False) verify https URLs
        # (resource uploads) against the default store; point it at the emulator's CA.
        env["SSL_CERT_FILE"] = cfg["ca_file"]
        if paths:
            env["PYTHONPATH"] = os.pathsep.join(paths + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
        order = ["mqtt", "template", "gateway", "ota", "ota_resume", "ota_https", "dynreg", "ntp", "rrpc", "broadcast", "http_publish",
                 "resources", "websocket"]
        for name in order:
            if args.only and REPORT_AS.get(name, name) not in args.only:
                continue
            try:
                p = subprocess.run([sys.executable, os.path.abspath(__file__), "group", name, "--config", cfg_path],
                                   env=env, capture_output=True, text=True, timeout=120)
                stdout, stderr, code = p.stdout, p.stderr, p.returncode
            except subprocess.TimeoutExpired as e:
                stdout = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
                stderr, code = "timed out after 120 s", -1
            recs = [json.loads(l[7:]) for l in stdout.splitlines() if l.startswith("RESULT ")]
            if not recs or (code != 0 and all(r["ok"] for r in recs)):
                recs.append({"group": REPORT_AS.get(name, name), "check": "process " + name, "ok": False,
                             "detail": "exit %s: %s" % (code, stderr[-1500:])})
            for r in recs:
                print("%-4s %-13s %s%s" % ("ok" if r["ok"] else "FAIL", r["group"], r["check"],
                                            "" if r["ok"] else "\n       " + r["detail"].replace("\n", "\n       ")))
            if args.verbose and stderr.strip():
                print(stderr[-3000:])
            results.extend(recs)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
    groups = []
    for r in results:
        if r["group"] not in groups:
            groups.append(r["group"])
    print()
    print("interop summary (official Python SDK against tplgen emulate), per call group:")
    for g in groups:
        rs = [r for r in results if r["group"] == g]
        bad = [r for r in rs if not r["ok"]]
        print("  %-13s %s  %d passed, %d failed%s" % (g, "PASS" if not bad else "FAIL", len(rs) - len(bad), len(bad),
                                                    "" if not bad else "  (" + "; ".join(r["check"] for r in bad) + ")"))
    for g, why in NOT_LANDED.items():
        print("  %-13s not run: %s" % (g, why))
    passed = sum(1 for r in results if r["ok"])
    failed = len(results) - passed
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    print("interop: %d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 and passed > 0 else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("suite")
    s.add_argument("--tplgen", required=True)
    s.add_argument("--sdk", help="directory holding the SDK packages (hub/, explorer/), added to PYTHONPATH")
    s.add_argument("--template", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "schemas",
                                                       "light.json"))
    s.add_argument("--only", nargs="*", help="run only these call groups")
    s.add_argument("--json", help="write every check result to this file")
    s.add_argument("-v", "--verbose", action="store_true")
    g = sub.add_parser("group")
    g.add_argument("name", choices=sorted(GROUP_FUNCS))
    g.add_argument("--config", required=True)
    a = ap.parse_args()
    if a.cmd == "group":
        run_group(a.name, a.config)
    sys.exit(suite(a))


if __name__ == "__main__":
    main()
