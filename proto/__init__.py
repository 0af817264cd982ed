"""gensc.proto"""
