"""Keeping the store consistent: the checker (`training-files check`) and the clean-up the
server runs of what crashes leave behind."""
