#!/bin/sh
set -e
echo base-v1 > /etc/vmkiln-base
