# A small image for the introductory course.
FROM quay.io/jupyter/minimal-notebook:2024-10-07
USER root
COPY start-in-dir-as-uid.sh /usr/local/bin/start-in-dir-as-uid.sh
