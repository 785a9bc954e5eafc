# The nbh-sync daemon in a container, driving the host's engine through its
# socket. Built from the static binary of `make build` (no registry needed):
#
#   make image
#   docker run -d --name nbh-sync --restart unless-stopped \
#     -v /var/run/docker.sock:/var/run/docker.sock \
#     -v /var/lib/nbh-sync:/var/lib/nbh-sync \
#     -v /etc/nbh-sync:/etc/nbh-sync:ro \
#     -e NBH_CONFIG=https://git.example.org/site/config.git \
#     -p 127.0.0.1:8787:8787 \
#     nbh-sync:latest
#
# ROOT must be the same path inside and outside: student and course mounts
# are made by the host's engine from the paths nbh-sync computes.
FROM scratch
COPY bin/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY bin/nbh-sync /usr/local/bin/nbh-sync
ENV NBH_ROOT=/var/lib/nbh-sync
EXPOSE 8787
ENTRYPOINT ["/usr/local/bin/nbh-sync"]
CMD ["run", "--listen", "0.0.0.0:8787", "--log-format", "json"]
