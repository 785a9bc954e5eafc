# An admin image several courses may share; built on the site's core image,
# which already holds the start script.
FROM nbhosting/minimal-notebook
RUN mkdir -p /opt/shared && echo "shared by the courses on image shared" >/opt/shared/README
ENV NBH_DEMO_IMAGE=shared
