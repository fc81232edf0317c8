# HAProxy from Debian's own package, with haproxy.cfg. Build it from this folder:
#   docker build -f lb.Dockerfile -t shortener-lb .
# BASE lets a machine without a registry use a local Debian image (tests/test_swarm.py does).
ARG BASE=debian:trixie-slim
FROM ${BASE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends haproxy \
 && rm -rf /var/lib/apt/lists/*
COPY haproxy.cfg /etc/haproxy/haproxy.cfg
# Debian's haproxy user; 8080 needs no privilege.
USER haproxy
EXPOSE 8080
CMD ["haproxy", "-W", "-db", "-f", "/etc/haproxy/haproxy.cfg"]
