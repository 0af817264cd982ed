"""gensc.receiver"""
