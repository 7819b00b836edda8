#!/bin/sh
set -e
echo node-v1 > /etc/vmkiln-node
cat /etc/vmkiln-base > /etc/vmkiln-node-saw-base
