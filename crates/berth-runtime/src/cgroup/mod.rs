//! Cgroups v1 and v2 behind one interface (being written).
