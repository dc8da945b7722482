"""Tools built on training and inference: gradcheck, lr-search, doctor, predict, viz."""
