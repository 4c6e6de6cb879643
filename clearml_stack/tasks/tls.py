"""TLS at the subdomain gateway: `inv tls.self-signed`, `inv tls.show`."""

from __future__ import annotations

from .. import ui
from ..errors import StackError
from .base import settings as load_settings, task


@task(name="self-signed", help={
    "renew": "make a new gateway certificate now (same CA: clients keep trusting it)",
    "new_ca": "make a new CA too (every client must trust the new one)",
})
def self_signed(c, renew=False, new_ca=False):
    """Use a private CA and a certificate for *.<domain> at the gateway (sets CLEARML_TLS=self-signed)."""
    from .. import gateway, tls
    from ..install import install as do_install

    current = load_settings()
    if current.mode != "subdomains":
        raise StackError(f"CLEARML_ACCESS_MODE={current.mode}: TLS at the gateway is for subdomains mode",
                         "`inv install --mode subdomains --domain clearml.example.com --self-signed`")
    from .setup import gateway_ports

    updates = {"CLEARML_TLS": "self-signed"}
    settings, report = do_install({**updates, **gateway_ports(current.values, updates)})
    if renew or new_ca:
        done = gateway.GatewayReport()
        gateway.ensure_self_signed(settings, done, renew=True, new_ca=new_ca)
        report.lines += done.lines
        if done.new_ca:
            for line in tls.trust_instructions(str(gateway.ca_cert_path(settings))):
                ui.note(line)
    for line in report.lines:
        ui.ok(line)
    ui.out(f"CA certificate: {gateway.ca_cert_path(settings)}")
    ui.note("`inv up` applies it to the running gateway; `inv tls.show` prints how clients trust the CA")


@task
def show(c):
    """Show the gateway's TLS setup, certificate dates and how clients trust the CA."""
    from .. import gateway, tls

    settings = load_settings()
    if not gateway.tls_at_gateway(settings):
        where = {"external": "a proxy in front of the gateway ends TLS (CLEARML_TLS=external)",
                 "off": "the gateway speaks plain HTTP (CLEARML_TLS=off)"}.get(settings.tls, "")
        ui.out(f"mode {settings.mode}: " + (where if settings.mode == "subdomains" else "no gateway TLS"))
        return
    cert = gateway.tls_dir(settings) / gateway.CERT_NAME
    if not cert.is_file():
        raise StackError(f"no gateway certificate yet at {cert}", "run `inv install` (or `inv up`)")
    pem = cert.read_bytes()
    leaf = tls.load_chain(pem, str(cert))[0]
    ui.out(f"TLS: {settings.tls}; served certificate {cert}")
    ui.out(f"  names: {', '.join(tls.dns_names(leaf))}")
    ui.out(f"  valid until: {tls.not_after(pem):%Y-%m-%d}; SHA-256 {tls.fingerprint(pem)}")
    if settings.tls == "self-signed":
        ca = gateway.ca_cert_path(settings)
        ui.out(f"CA: {ca} (valid until {tls.not_after(ca.read_bytes()):%Y-%m-%d}; "
               f"SHA-256 {tls.fingerprint(ca.read_bytes())})")
        for line in tls.trust_instructions(str(ca)):
            ui.out(line)
