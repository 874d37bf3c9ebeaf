// ODE-Flow's ISCX arrays (../shared/data/ode-flow, see PROVENANCE.md) as a flowpic dataset:
// each sample (20 consecutive packets of one unidirectional session) becomes one count window.
#pragma once

#include <string>

#include "tools/dataset.hpp"
#include "tools/npy.hpp"

namespace flowpic {

// Class names in ODE-Flow's label order 0..4.
const std::vector<std::string>& odeflow_classes();

// x: (N, 2, P) float64, [:,0,:] IP sizes in bytes, [:,1,:] seconds since the session start;
// y: (N,) labels 0..4. Times are shifted so each window starts at its first packet.
// Throws DatasetError naming the sample on a bad shape, label, size or time.
WindowDataset dataset_from_odeflow(const NpyArray& x, const NpyArray& y, const std::string& source);

// Reads DIR/ode_const_20_multiclass_reg_{x,y}_{split}.npy (split: train|val).
WindowDataset load_odeflow(const std::string& dir, const std::string& split);

}  // namespace flowpic
