import 'reflect-metadata';
import { runService } from '@relay/platform';
import { businessForwardingService } from './service';

runService(businessForwardingService());
