#!/bin/sh
# Render the configuration from the environment, then run Asterisk in the foreground as the
# asterisk user. The health check talks to it with:
#   asterisk -C "$PBX_RUN_DIR/etc/asterisk.conf" -rx 'core show uptime'
set -eu
RUN_DIR="${PBX_RUN_DIR:-/var/lib/callcenter-pbx}"
for sub in etc lib/keys spool run log cache; do
    mkdir -p "$RUN_DIR/$sub"
done
python3 /opt/callcenter/docker/asterisk/render.py "$RUN_DIR"
chown -R asterisk:asterisk "$RUN_DIR"
chmod -R go-rwx "$RUN_DIR/etc"
exec asterisk -f -n -U asterisk -G asterisk -C "$RUN_DIR/etc/asterisk.conf"
