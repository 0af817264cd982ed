"""gensc.common"""
