"""The operator trust space: national whitelist, trust list, DN matching, next hop.

Pure building blocks (no sockets, no database):

* :mod:`.whitelist` -- the ANS "liste blanche" XML parser and diff;
* :mod:`.dn` -- certificate subject DN parsing and matching;
* :mod:`.trustlist` -- local + national trust list, JSON persistence, TLS contexts;
* :mod:`.resolver` -- MX/A/AAAA resolution seam and next-hop selection;
* :mod:`.askcert` -- request any client certificate, apply the chain verdict after the
  handshake (Postfix ``smtpd_tls_ask_ccert``).
"""
