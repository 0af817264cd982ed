"""gensc.channel"""
