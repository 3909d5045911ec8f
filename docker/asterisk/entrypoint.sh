#!/bin/sh
# Render the configuration from the environment, then run Asterisk in the foreground as the
# asterisk user. The health check talks to it with:
#   asterisk -C "$PBX_RUN_DIR/etc/asterisk.conf" -rx 'core show uptime'
set -eu
RUN_DIR="${PBX_RUN_DIR:-/var/lib/callcenter-pbx}"
for sub in etc lib/keys spool run log cache queues; do
    mkdir -p "$RUN_DIR/$sub"
done
# queues_managed.conf lives in RUN_DIR/queues, a volume the app shares (docker-compose.yml):
# /admin/queues replaces it there, Asterisk reads it through etc/. The app runs as another
# user, so the directory is writable by both; the app writes the file 0644.
touch "$RUN_DIR/queues/queues_managed.conf"
ln -sfn "$RUN_DIR/queues/queues_managed.conf" "$RUN_DIR/etc/queues_managed.conf"
python3 /opt/callcenter/docker/asterisk/render.py "$RUN_DIR"
chown -R asterisk:asterisk "$RUN_DIR"
chmod -R go-rwx "$RUN_DIR/etc"
chmod 0777 "$RUN_DIR/queues"
chmod 0644 "$RUN_DIR/queues/queues_managed.conf"
exec asterisk -f -n -U asterisk -G asterisk -C "$RUN_DIR/etc/asterisk.conf"
