"""gensc.sender"""
