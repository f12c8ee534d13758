import 'reflect-metadata';
import { runService } from '@relay/platform';
import { gatewayService } from './service';

runService(gatewayService);
