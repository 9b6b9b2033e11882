"""What every resource shares: the tracked model, versioned viewset, filters, paging, auth."""
