"""eegcrp."""
