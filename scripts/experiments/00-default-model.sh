#!/bin/bash
# Builds models/odeflow-lenet32.fpm (the ODE-Flow-only model, the default until the corpus model)
# and checks its val figure (models/README.md). The default now comes from 12-default-model.sh.
# MODEL=path to write elsewhere (default: $OUT/odeflow-lenet32.fpm; copy it to models/ yourself).
source "$(dirname "$0")/common.sh"
O=$OUT/ode; mkdir -p "$O"
MODEL=${MODEL:-$OUT/odeflow-lenet32.fpm}
fp dataset ode-flow --data "$DATA/ode-flow" --split train -o "$O/train.fpd"
fp dataset ode-flow --data "$DATA/ode-flow" --split val -o "$O/val.fpd"
/usr/bin/time -f "training: %e s wall, %U s user CPU" \
  "$FLOWPIC" --no-progress train -d "$O/train.fpd" -o "$MODEL" --name odeflow-lenet32 --seed 1 --threads 1 \
  "${ODE_PICTURE[@]}" "${ODE_TRAIN[@]}"
fp eval -m "$MODEL" -d "$O/val.fpd" --thresholds 0,0.5,0.7,0.9,0.95,0.99
